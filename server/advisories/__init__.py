"""Vendor advisories: CSAF 2.0 import, normal form, explainable matching, patch status.

Pipeline: ``csaf`` validates a document, ``normalise`` compiles it into the normal form
(products with version specs from ``ranges``, names from ``names``, fixed-in versions from
``fixes``), ``matcher`` matches a device identity against an index of normal forms with
the vendor-aware comparison of ``versions``, ``importer`` reads files, folders, archives
and provider feeds into the tables of ``db``, and ``patch`` tracks per-asset status.
"""
