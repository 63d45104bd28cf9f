"""WinRM probe: a Windows host over WS-Management, the SSH Windows commands and parsers."""
