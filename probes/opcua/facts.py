"""Facts the OPC UA probe can produce (docs/facts.md, sections identity and opcua)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec

FACTS: dict[str, FactSpec] = {
    **{path: IDENTITY[path] for path in (
        "identity.vendor", "identity.product", "identity.firmware_version",
    )},
    "opcua.endpoints": FactSpec("list", "Every endpoint: url, security_policy, security_mode, "
                                "security_level, user_tokens"),
    "opcua.security_policies": FactSpec("list", "Security policies offered (None, "
                                        "Basic128Rsa15, Basic256, Basic256Sha256, "
                                        "Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss)"),
    "opcua.security_modes": FactSpec("list", "Message security modes offered (None, Sign, "
                                     "SignAndEncrypt)"),
    "opcua.security_none": FactSpec("bool", "An endpoint without security (policy or mode "
                                    "None) is offered"),
    "opcua.deprecated_policies": FactSpec("list", "Offered policies the specification "
                                          "deprecates (Basic128Rsa15, Basic256: SHA-1)"),
    "opcua.user_token_types": FactSpec("list", "User token types accepted on any endpoint "
                                       "(Anonymous, UserName, Certificate, IssuedToken)"),
    "opcua.anonymous": FactSpec("bool", "An endpoint accepts anonymous users"),
    "opcua.cleartext_password": FactSpec("bool", "An endpoint without security takes user "
                                         "names whose password is not encrypted either"),
    "opcua.application_uri": FactSpec("str", "Server ApplicationUri (GetEndpoints)"),
    "opcua.product_uri": FactSpec("str", "Server ProductUri (GetEndpoints)"),
    "opcua.application_name": FactSpec("str", "Server ApplicationName (GetEndpoints)"),
    "opcua.cert_key_type": FactSpec("str", "Key type of the server certificate"),
    "opcua.cert_key_bits": FactSpec("int", "Key size of the server certificate"),
    "opcua.cert_signature_algorithm": FactSpec("str", "Certificate signature algorithm "
                                               "(sha256WithRSAEncryption, ...)"),
    "opcua.cert_signature_hash": FactSpec("str", "Hash of the certificate signature (sha1, "
                                          "sha256, ...)"),
    "opcua.cert_not_before": FactSpec("str", "Start of validity (ISO 8601, UTC)"),
    "opcua.cert_not_after": FactSpec("str", "End of validity (ISO 8601, UTC)"),
    "opcua.cert_days_left": FactSpec("int", "Days from the probe run to the end of validity "
                                     "(negative: expired)"),
    "opcua.cert_self_signed": FactSpec("bool", "Issuer equals subject and the certificate is "
                                       "signed by its own key"),
    "opcua.cert_application_uri": FactSpec("str", "URI in the certificate's subjectAltName"),
    "opcua.cert_uri_matches": FactSpec("bool", "That URI equals the server's ApplicationUri"),
    "opcua.anonymous_session": FactSpec("bool", "An anonymous session was created and "
                                        "activated (only tried when the inventory allows it)"),
    "opcua.build_number": FactSpec("str", "BuildInfo BuildNumber"),
    "opcua.build_date": FactSpec("str", "BuildInfo BuildDate (ISO 8601)"),
}
