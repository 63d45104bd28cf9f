"""Facts the EtherNet/IP probe can produce (docs/facts.md, sections identity and enip)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec

FACTS: dict[str, FactSpec] = {
    **{path: IDENTITY[path] for path in (
        "identity.vendor", "identity.product", "identity.model", "identity.order_code",
        "identity.firmware_version", "identity.hardware_version", "identity.serial",
    )},
    "enip.vendor_id": FactSpec("int", "ODVA vendor id (Identity attribute 1)"),
    "enip.device_type": FactSpec("int", "CIP device profile (Identity attribute 2)"),
    "enip.device_type_name": FactSpec("str", "Name of the device profile (14: Programmable "
                                      "Logic Controller, 12: Communications Adapter)"),
    "enip.product_code": FactSpec("int", "Vendor's product code (Identity attribute 3)"),
    "enip.revision": FactSpec("str", "CIP revision major.minor as sent (attribute 4)"),
    "enip.product_name": FactSpec("str", "Product name as sent (attribute 7)"),
    "enip.status": FactSpec("int", "Identity status word (attribute 5)"),
    "enip.status_owned": FactSpec("bool", "Status bit 0: an I/O connection owns the device"),
    "enip.status_configured": FactSpec("bool", "Status bit 2: configuration differs from "
                                       "the factory default"),
    "enip.extended_status": FactSpec("str", "Meaning of status bits 4-7"),
    "enip.faults": FactSpec("list", "Fault bits 8-11 that are set (names)"),
    "enip.state": FactSpec("int", "Device state (attribute 8) from ListIdentity"),
    "enip.state_name": FactSpec("str", "Meaning of the state byte"),
    "enip.socket_address": FactSpec("str", "Address and port the device reports for itself "
                                    "in ListIdentity"),
    "enip.list_identity": FactSpec("bool", "ListIdentity answered (no authentication exists "
                                   "for it)"),
    "enip.session_accepted": FactSpec("bool", "RegisterSession on the unencrypted port "
                                      "accepted without any authentication"),
    "enip.explicit_read": FactSpec("bool", "An unconnected explicit request (Get_Attributes_All "
                                   "of the Identity object) answered over that session"),
    "enip.tls_port_open": FactSpec("bool", "The CIP Security (EtherNet/IP over TLS) port, "
                                   "2221 by default, accepted a TCP connection"),
    "enip.cip_security": FactSpec("bool", "A TLS handshake completed on that port"),
    "enip.tls_version": FactSpec("str", "TLS version negotiated there (TLSv1.2, TLSv1.3)"),
    "enip.tls_cipher": FactSpec("str", "Cipher suite negotiated there"),
    "enip.cert_key_type": FactSpec("str", "Key type of the TLS certificate (RSA, EC, ...)"),
    "enip.cert_key_bits": FactSpec("int", "Key size of the TLS certificate"),
    "enip.cert_signature_hash": FactSpec("str", "Hash of the certificate signature (sha1, "
                                         "sha256, ...)"),
    "enip.cert_not_after": FactSpec("str", "End of validity (ISO 8601, UTC)"),
    "enip.cert_days_left": FactSpec("int", "Days from the probe run to the end of validity "
                                    "(negative: expired)"),
    "enip.cert_self_signed": FactSpec("bool", "Issuer equals subject and the certificate is "
                                      "signed by its own key"),
}
