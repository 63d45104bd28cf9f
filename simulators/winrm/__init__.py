"""WinRM (WS-Management) simulator: a Windows host's listener, answering from its profile."""
