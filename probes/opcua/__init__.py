"""OPC UA probe: endpoints, security policies, user tokens, certificate, BuildInfo."""
