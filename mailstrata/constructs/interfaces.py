"""What one construct needs from another, as small interfaces (aws-cdk's `IConnectable` idea).

A construct never hands out its half-built self. `MailLayer` makes its security group and ports, then hands
`NfsShare.grant_mount` a finished `StorageClient`; it makes its servers, then hands each VIP's `add_members`
a finished `MemberGroup`. `LbaasVip` and `NfsShare` read nothing else of the layer, so any object with these
attributes will do (servers made outside mailstrata, for example).

    IMemberGroup   what a VIP needs from the servers it balances: who they are, on which subnet
    IStorageClient what storage needs from the servers that mount it: their addresses and security group
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mailstrata.roles import Role


@dataclass(frozen=True, kw_only=True)
class Member:
    """One server in a load-balancer pool."""

    name: str  # the member's name in the pool (the server's name)
    address: str  # its fixed IP (may be a Terraform reference)


@runtime_checkable
class IMemberGroup(Protocol):
    """What `LbaasVip.add_members` needs: one pool member per server, on every port of the VIP.

    `group_id` names the members' resources (`members-<port>-<group_id>`), so it is unique among the groups
    of one VIP (a `MailLayer` uses its construct id). `role`: the layer the servers serve; it must be the
    VIP's. `subnet_id`: the subnet the members' addresses are on.
    """

    @property
    def group_id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def subnet_id(self) -> str: ...

    @property
    def members(self) -> tuple[Member, ...]: ...


@runtime_checkable
class IStorageClient(Protocol):
    """What `NfsShare.grant_mount` needs: the servers' addresses (Manila access rules) and their security
    group (the NFS server's rules name it as the source).

    `client_id` names the grant's resources (`access-<client_id>-NN`, `rule-<client_id>-...`), so it is unique
    among the clients of one share (a `MailLayer` uses its construct id). `role` names the servers in rule
    descriptions.
    """

    @property
    def client_id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def security_group_id(self) -> str: ...

    @property
    def addresses(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, kw_only=True)
class MemberGroup:
    """A finished `IMemberGroup` (what `MailLayer.member_group` is)."""

    group_id: str
    role: Role
    subnet_id: str
    members: tuple[Member, ...]


@dataclass(frozen=True, kw_only=True)
class StorageClient:
    """A finished `IStorageClient` (what `MailLayer.storage_client` is)."""

    client_id: str
    role: Role
    security_group_id: str
    addresses: tuple[str, ...]
