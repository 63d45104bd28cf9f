"""EtherNet/IP (CIP) probe: ListIdentity, the Identity object and the CIP Security port."""
