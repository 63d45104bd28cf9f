"""The server: stores observations, evaluates baselines, tracks advisories, reports."""
