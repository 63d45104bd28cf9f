"""Facts the SSH probe can produce (paths documented in docs/facts.md)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec

_IDENTITY = ("identity.vendor", "identity.product", "identity.model",
             "identity.firmware_version", "identity.hardware_version", "identity.serial",
             "identity.name", "identity.os")

TRANSPORT: dict[str, FactSpec] = {
    "ssh.banner": FactSpec("str", "Server identification string"),
    "ssh.protocol_version": FactSpec("str", "Protocol version of the identification (2.0, 1.99)"),
    "ssh.kex_algorithms": FactSpec("list", "Key exchange algorithms offered (KEXINIT)"),
    "ssh.host_key_algorithms": FactSpec("list", "Host key algorithms offered (KEXINIT)"),
    "ssh.ciphers": FactSpec("list", "Ciphers offered, server to client (KEXINIT)"),
    "ssh.macs": FactSpec("list", "MACs offered, server to client (KEXINIT)"),
    "ssh.weak_kex": FactSpec("list", "Offered kex algorithms on the weak list"),
    "ssh.weak_host_key_algorithms": FactSpec("list", "Offered host key algs on the weak list"),
    "ssh.weak_ciphers": FactSpec("list", "Offered ciphers on the weak list"),
    "ssh.weak_macs": FactSpec("list", "Offered MACs on the weak list"),
    "ssh.auth_methods": FactSpec("list", "Authentication methods offered"),
    "ssh.password_auth_offered": FactSpec("bool", "password or keyboard-interactive offered"),
    "ssh.host_key_fingerprint": FactSpec("str", "SHA256 fingerprint of the host key"),
    "ssh.host_key_changed": FactSpec("bool", "Host key differs from the pinned one"),
    "ssh.legacy_algorithms_used": FactSpec("bool", "Login needed the legacy algorithm set"),
}

HOST: dict[str, FactSpec] = {
    "os.name": FactSpec("str", "OS name (/etc/os-release NAME)"),
    "os.version": FactSpec("str", "OS version (/etc/os-release VERSION_ID)"),
    "os.kernel": FactSpec("str", "Kernel release (uname -r)"),
    "sshd.permit_root_login": FactSpec(
        "enum", "sshd PermitRootLogin",
        ("yes", "no", "prohibit-password", "forced-commands-only")),
    "sshd.password_authentication": FactSpec("bool", "sshd PasswordAuthentication"),
    "sshd.permit_empty_passwords": FactSpec("bool", "sshd PermitEmptyPasswords"),
    "sshd.pubkey_authentication": FactSpec("bool", "sshd PubkeyAuthentication"),
    "sshd.kbd_interactive_authentication": FactSpec("bool", "sshd KbdInteractiveAuthentication"),
    "sshd.x11_forwarding": FactSpec("bool", "sshd X11Forwarding"),
    "sshd.max_auth_tries": FactSpec("int", "sshd MaxAuthTries"),
    "sshd.client_alive_interval": FactSpec("int", "sshd ClientAliveInterval (s)"),
    "sshd.login_grace_time": FactSpec("int", "sshd LoginGraceTime (s)"),
    "sshd.log_level": FactSpec("str", "sshd LogLevel"),
    "sshd.authentication_methods": FactSpec(
        "list", "sshd AuthenticationMethods lists (['any'] when unrestricted)"),
    "sshd.ciphers": FactSpec("list", "sshd Ciphers (effective)"),
    "sshd.macs": FactSpec("list", "sshd MACs (effective)"),
    "sshd.kex_algorithms": FactSpec("list", "sshd KexAlgorithms (effective)"),
    "sshd.weak_ciphers": FactSpec("list", "sshd Ciphers on the weak list (weak_algorithms.yaml)"),
    "sshd.weak_macs": FactSpec("list", "sshd MACs on the weak list (weak_algorithms.yaml)"),
    "sshd.weak_kex": FactSpec("list", "sshd KexAlgorithms on the weak list"),
    "pwpol.min_length": FactSpec("int", "pwquality/cracklib minimum password length"),
    "pwpol.max_days": FactSpec("int", "login.defs PASS_MAX_DAYS"),
    "pwpol.min_days": FactSpec("int", "login.defs PASS_MIN_DAYS"),
    "pwpol.lockout_configured": FactSpec("bool", "pam_faillock/pam_tally2 in the auth stack"),
    "pwpol.lockout_deny": FactSpec("int", "Failed attempts before lockout"),
    "pwpol.lockout_unlock_time": FactSpec("int", "Lockout duration in seconds (0 = never)"),
    "pwpol.hash_method": FactSpec("str", "Hash method of new passwords"),
    "logging.remote_targets": FactSpec("list", "Remote log targets {host, port, protocol, tls}"),
    "logging.remote_enabled": FactSpec("bool", "At least one remote log target"),
    "logging.remote_tls": FactSpec("bool", "Every remote log target uses TLS"),
    "logging.auditd_active": FactSpec("bool", "auditd running"),
    "logging.audit_rules": FactSpec("int", "Number of loaded audit rules"),
    "time.ntp_sources": FactSpec("list", "Configured time sources"),
    "time.synchronized": FactSpec("bool", "System clock synchronised"),
    "services.listening": FactSpec("list", "Listening sockets {proto, address, port, process}"),
    "services.enabled": FactSpec("list", "Enabled service units"),
    "software.packages": FactSpec("list", "Installed packages {name, version}"),
}

# Windows hosts (OpenSSH for Windows + PowerShell); pwpol.*, time.*, logging.remote_enabled,
# software.packages and os.name/os.version are shared with HOST.
WINDOWS: dict[str, FactSpec] = {
    "os.family": FactSpec("enum", "Operating system family", ("linux", "windows")),
    "os.build": FactSpec("str", "Windows build and update revision (CurrentBuild.UBR)"),
    "os.edition": FactSpec("str", "Windows edition (EditionID: Enterprise, IoTEnterpriseS ...)"),
    "win.hotfixes": FactSpec("list", "Installed updates {id, installed_on} (Get-HotFix)"),
    "win.last_patch_date": FactSpec("str", "Install date of the newest update (YYYY-MM-DD)"),
    "win.patch_age_days": FactSpec("int", "Days from the newest update to the observation"),
    "pwpol.history": FactSpec("int", "Passwords remembered (net accounts history)"),
    "win.audit_policy": FactSpec("dict", "Audit policy subcategory -> inclusion setting"),
    "win.audit_gaps": FactSpec("list", "Required audit subcategories not audited as needed"),
    "av.enabled": FactSpec("bool", "Antivirus service and engine enabled"),
    "av.realtime": FactSpec("bool", "Real-time protection enabled"),
    "av.signature_age_days": FactSpec("int", "Age of the antivirus signatures in days"),
    "av.product": FactSpec("str", "Antivirus product read"),
    "win.firewall_profiles": FactSpec("list", "Firewall profiles {name, enabled, default_inbound}"),
    "win.firewall_enabled": FactSpec("bool", "Every firewall profile (Domain, Private, Public) on"),
    "win.smb1_enabled": FactSpec("bool", "SMBv1 server protocol enabled"),
    "win.rdp_enabled": FactSpec("bool", "Remote Desktop connections allowed"),
    "win.rdp_nla": FactSpec("bool", "RDP requires Network Level Authentication"),
    "win.local_admins": FactSpec("list", "Members of BUILTIN\\Administrators {name, kind, source}"),
    "win.local_admin_count": FactSpec("int", "Number of local administrators"),
    "win.usb_storage_enabled": FactSpec("bool", "USB mass-storage driver allowed to start"),
    "time.source": FactSpec("str", "Time source the Windows Time service uses"),
    "logging.sysmon_installed": FactSpec("bool", "Sysmon service present"),
    "logging.sysmon_running": FactSpec("bool", "Sysmon service running"),
    "logging.event_forwarding": FactSpec(
        "bool", "Windows Event Forwarding subscription manager set"),
    "software.ics_products": FactSpec(
        "list", "Installed ICS products {vendor, product, version, display_name}: each is an "
        "identity of the host for advisory matching"),
}
WINDOWS_ONLY = tuple(p for p in WINDOWS if p not in HOST)

SWITCH: dict[str, FactSpec] = {
    "mgmt.telnet_enabled": FactSpec("bool", "Telnet management access enabled"),
    "mgmt.http_enabled": FactSpec("bool", "HTTP management server enabled"),
    "mgmt.https_enabled": FactSpec("bool", "HTTPS management server enabled"),
    "mgmt.ssh_v2_only": FactSpec("bool", "SSH restricted to protocol version 2"),
    "aaa.new_model": FactSpec("bool", "Central AAA (RADIUS/TACACS+) used for login"),
    "aaa.servers": FactSpec("list", "AAA servers {protocol, host}"),
    "auth.enable_secret_type": FactSpec(
        "enum", "Enable secret/password type", ("0", "5", "7", "8", "9", "plain", "none")),
    "auth.password_encryption": FactSpec("bool", "service password-encryption"),
    "auth.local_users": FactSpec("list", "Local users {name, privilege, secret_type}"),
    "logging.hosts": FactSpec("list", "Syslog target hosts"),
    "time.ntp_servers": FactSpec("list", "NTP/SNTP servers"),
    "snmp.communities": FactSpec("list", "SNMP communities {name_hash, access, acl, default}"),
    "mgmt.banner_configured": FactSpec("bool", "Login/motd banner configured"),
    "interfaces.unused_up": FactSpec("int", "Ports not shut down without description/VLAN use"),
}

FACTS: dict[str, FactSpec] = {
    **{path: IDENTITY[path] for path in _IDENTITY}, **TRANSPORT, **HOST, **WINDOWS, **SWITCH,
}
LOGIN_FACTS = tuple(p for p in FACTS if p not in TRANSPORT)
