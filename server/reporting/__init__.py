"""The deliverable: the gap report as data (``report_document``), HTML and PDF from one
template set, SARIF 2.1.0, OSCAL assessment-results and CSV, and the signed evidence
package. Server-side functions only: the CLI, the demo and the future REST API call them."""
