"""SNMP device profiles: who may ask (versions, communities, v3 users) and what is served.

A profile is YAML (see ``profiles/``). The device side holds its secrets literally
(communities, v3 keys); probes only ever get them through secret references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Version = Literal["v1", "v2c", "v3"]
Access = Literal["ro", "rw"]
AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "3DES", "AES-128", "AES-192", "AES-256"]
IfStatus = Literal["up", "down", "testing", "unknown", "dormant", "notPresent",
                   "lowerLayerDown"]
EntityClass = Literal["other", "unknown", "chassis", "backplane", "container", "powerSupply",
                      "fan", "sensor", "module", "port", "stack", "cpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Community(_Strict):
    community: str = Field(min_length=1)
    access: Access = "ro"


class V3User(_Strict):
    name: str = Field(min_length=1, max_length=32)
    auth: AuthProtocol | None = None
    auth_key: str | None = Field(None, min_length=8)
    priv: PrivProtocol | None = None
    priv_key: str | None = Field(None, min_length=8)
    access: Access = "ro"

    @model_validator(mode="after")
    def _consistent(self) -> V3User:
        if (self.auth is None) != (self.auth_key is None):
            raise ValueError("give both 'auth' and 'auth_key', or neither")
        if (self.priv is None) != (self.priv_key is None):
            raise ValueError("give both 'priv' and 'priv_key', or neither")
        if self.priv and not self.auth:
            raise ValueError("privacy needs authentication (USM has no noAuthPriv)")
        return self

    @property
    def security_level(self) -> str:
        if self.priv:
            return "authPriv"
        return "authNoPriv" if self.auth else "noAuthNoPriv"


class Agent(_Strict):
    versions: list[Version] = Field(default_factory=lambda: ["v1", "v2c"])
    communities: list[Community] = Field(default_factory=list)
    users: list[V3User] = Field(default_factory=list)
    engine_id: str | None = Field(None, pattern=r"^[0-9a-fA-F]{10,64}$",
                                  description="snmpEngineID in hex (default: pysnmp's)")


class System(_Strict):
    descr: str
    object_id: str = "1.3.6.1.4.1.8072.3.2.10"
    contact: str = ""
    name: str = ""
    location: str = ""
    services: int = 2
    uptime: int | None = Field(None, description="fixed sysUpTime; default counts from start")


class Entity(_Strict):
    index: int = Field(ge=1)
    descr: str = ""
    vendor_type: str = "0.0"
    contained_in: int = 0
    entity_class: EntityClass = Field("chassis", alias="class")
    parent_rel_pos: int = -1
    name: str = ""
    hardware_rev: str = ""
    firmware_rev: str = ""
    software_rev: str = ""
    serial: str = ""
    mfg: str = ""
    model: str = ""
    is_fru: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Interface(_Strict):
    index: int = Field(ge=1)
    name: str
    descr: str | None = None
    type: int = 6  # ethernetCsmacd
    mtu: int = 1500
    speed: int = 100_000_000
    mac: str = ""
    admin: IfStatus = "up"
    oper: IfStatus = "up"
    alias: str = ""


class ExtraOid(_Strict):
    oid: str
    type: str = "OctetString"
    value: Any = None


class SnmpProfile(_Strict):
    name: str
    description: str = ""
    agent: Agent = Field(default_factory=Agent)
    system: System | None = None
    entities: list[Entity] = Field(default_factory=list)
    interfaces: list[Interface] = Field(default_factory=list)
    extra: list[ExtraOid] = Field(default_factory=list)
    recording: str | None = Field(None, description="a .snmprec/snmpwalk file served as base")
    skip_bad_lines: bool = Field(False, description="serve a recording whose unreadable "
                                 "lines are skipped (default: such a file is an error)")

    @model_validator(mode="after")
    def _serves_something(self) -> SnmpProfile:
        if self.system is None and self.recording is None:
            raise ValueError("a profile needs 'system' or a 'recording'")
        if not self.agent.versions:
            raise ValueError("agent.versions is empty: the agent would answer nothing")
        if {"v1", "v2c"} & set(self.agent.versions) and not self.agent.communities:
            raise ValueError("v1/v2c enabled but no communities configured")
        if "v3" in self.agent.versions and not self.agent.users:
            raise ValueError("v3 enabled but no users configured")
        return self

    @classmethod
    def load(cls, path: str | Path) -> SnmpProfile:
        path = Path(path)
        profile = cls.model_validate(yaml.safe_load(path.read_text()))
        if profile.recording and not Path(profile.recording).is_absolute():
            profile.recording = str(path.parent / profile.recording)
        return profile
