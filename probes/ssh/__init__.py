"""SSH probe: transport audit without login, then allowlisted read-only commands."""
