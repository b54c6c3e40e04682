"""The platform config: YAML loads into these typed models; every default lives here, once.

The field descriptions are the config reference: `mailstrata schema` turns them into
docs/config-schema.json (for editors) and the key tables of docs/config.md.

Messages follow one grammar, `<yaml.path>: <what is wrong>, got <value>; <fix>`. A validator that finds
problems below its own level (a list item, a sibling field) raises `SubProblems` with paths relative to
the model it validates; the loader prefixes the model's own path.

One error never hides another in the same section: a model's cross-field rules (`@_rule`) run on the fields
that validated even when other fields did not (a rule that reads a broken field is skipped: that field's own
problem is reported), and a list's checks (`_list`: repeats, ...) run on the items that validated.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import types
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, core_schema

from mailstrata import defaults
from mailstrata.contract import DEFAULT_LISTENERS, PROXY_CAPABLE, RELAY
from mailstrata.directory import AttributeMap, DirectorySettings, LdapTls
from mailstrata.dns import TXT_STRING_MAX, DmarcPolicy
from mailstrata.errors import Problem
from mailstrata.mta_sts import MAX_AGE_LIMIT, MtaStsMode
from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.types import (
    Affinity,
    Algorithm,
    FtsBackend,
    ListenerProtocol,
    OverQuota,
    PoolProtocol,
    StorageMode,
    TlsSource,
)
from mailstrata.types import Secret as SecretValue


class SubProblems(ValueError):
    """Problems found by a validator, at paths relative to what it validates (`urls[0]`, `export`).

    An empty relative path means the validated value itself. The loader joins each path to the location
    pydantic reports, so a model validator can point at the exact key that is wrong.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) if p.path else p.message for p in self.problems))


def _raise_if_any(problems: Sequence[Problem]) -> None:
    if problems:
        raise SubProblems(problems)


# ---- small reusable validators (messages name the value and the fix) ---------------------------------

_DOMAIN = r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}[a-z0-9]$"
_DN_PART = re.compile(r"^[A-Za-z][A-Za-z0-9-]*=[^,=]+$")
_LDAP_URL = r"^ldaps?://[A-Za-z0-9.-]+(:\d{1,5})?/?$"
_NAME = r"^[a-z][a-z0-9-]{0,30}$"
_SELECTOR = r"^[a-z0-9][a-z0-9-]{0,62}$"
_VARIABLE = r"^[a-z_][a-z0-9_]{0,63}$"
_SIZE = r"^\d+[KMGT]?$"
_EXPORT = r"^[A-Za-z0-9.:\[\]-]+:/\S*$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _cidr(value: str) -> str:
    if "/" not in value:
        # ipaddress reads a bare address as a /32 (or /128): one host where a network was probably meant.
        try:
            host = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"is not a CIDR, got {value!r}; write network/prefix length, e.g. 10.0.0.0/24") from None
        example = ipaddress.ip_network(f"{host}/{24 if host.version == 4 else 64}", strict=False)
        raise ValueError(f"has no prefix length, got {value!r}; write the network with its prefix, e.g. {example}, "
                         f"or {host}/{host.max_prefixlen} for this one address") from None
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"is not a CIDR, got {value!r}; write network/prefix length, e.g. 10.0.0.0/24") from None
        raise ValueError(f"has host bits set, got {value!r}; use {loose}") from None
    return str(net)


def _domain(value: str) -> str:
    if not re.match(_DOMAIN, value):
        fix = f"use {value.lower()!r}" if re.match(_DOMAIN, value.lower()) else "write it like domain01.dom"
        raise ValueError(f"is not a lower-case DNS domain, got {value!r}; {fix}")
    return value


def _dn(value: str) -> str:
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or not all(_DN_PART.match(p) for p in parts):
        if re.match(_DOMAIN, value.lower()):
            fix = "use " + ",".join(f"dc={label}" for label in value.lower().split("."))
        else:
            fix = "write comma-separated attribute=value parts, e.g. dc=domain01,dc=dom"
        raise ValueError(f"is not an LDAP DN, got {value!r}; {fix}")
    return ",".join(parts)


def _ldap_url(value: str) -> str:
    if not re.match(_LDAP_URL, value):
        raise ValueError(
            f"is not an LDAP URL, got {value!r}; write ldaps://host:636 or ldap://host:389, "
            "e.g. ldaps://dc1.domain01.dom:636"
        )
    return value.rstrip("/")


def _matches(pattern: str, what: str, example: str) -> Any:
    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(f"is not {what}, got {value!r}; write it like {example}")
        return value

    return check


def _schema(fmt: str, description: str, example: str, pattern: str | None = None) -> WithJsonSchema:
    """The JSON Schema of a checked string: `format` names it (standard names where JSON Schema has one)."""
    out: dict[str, Any] = {"type": "string", "format": fmt, "description": description, "examples": [example]}
    if pattern is not None:
        out["pattern"] = pattern
    return WithJsonSchema(out)


Cidr = Annotated[
    str,
    AfterValidator(_cidr),
    _schema("cidr", "An IPv4 or IPv6 network in CIDR notation, without host bits.", "10.0.0.0/24"),
]
Domain = Annotated[
    str, AfterValidator(_domain), _schema("hostname", "A lower-case DNS domain.", "domain01.dom", _DOMAIN)
]
Dn = Annotated[str, AfterValidator(_dn), _schema("ldap-dn", "An LDAP distinguished name.", "dc=domain01,dc=dom")]
LdapUrl = Annotated[
    str, AfterValidator(_ldap_url), _schema("uri", "An LDAP URL: ldap://host[:port] or ldaps://host[:port].",
                                            "ldaps://dc1.domain01.dom:636", _LDAP_URL)
]
StackName = Annotated[
    str,
    AfterValidator(_matches(_NAME, "a stack name (lower-case letters, digits and -, starting with a letter, "
                                   "at most 31 characters)", "mail-prod")),
    _schema("stack-name", "Lower-case letters, digits and -, starting with a letter, at most 31 characters.",
            "mail", _NAME),
]
Size = Annotated[
    str,
    AfterValidator(_matches(_SIZE, "a size (a whole number with an optional K, M, G or T)", "2G")),
    _schema("size", "A whole number with an optional unit K, M, G or T (Dovecot's notation).", "2G", _SIZE),
]
DnsLabel = Annotated[
    str,
    AfterValidator(_matches(_SELECTOR, "a DNS label (lower-case letters, digits and -)", "mail")),
    _schema("dns-label", "A DNS label: lower-case letters, digits and -.", "mail", _SELECTOR),
]
# Terraform refuses these as variable names (Terraform docs, "Input Variables").
_RESERVED_VARIABLES = frozenset({"source", "version", "providers", "count", "for_each", "lifecycle", "depends_on",
                                 "locals"})


def _not_reserved(value: str) -> str:
    if value in _RESERVED_VARIABLES:
        raise ValueError(f"is a name Terraform reserves for itself, got {value!r}; choose another, e.g. "
                         f"mail_{value}")
    return value


VariableName = Annotated[
    str,
    AfterValidator(_matches(_VARIABLE, "a Terraform variable name (lower-case letters, digits and _)",
                            "ad_bind_password")),
    AfterValidator(_not_reserved),
    _schema("terraform-variable", "A Terraform variable name: lower-case letters, digits and _.",
            "ad_bind_password", _VARIABLE),
]
NfsExport = Annotated[
    str,
    AfterValidator(_matches(_EXPORT, "an NFS export host:/path", "nas1.domain01.dom:/export/mail")),
    _schema("nfs-export", "An NFS export as host:/path.", "nas1.domain01.dom:/export/mail", _EXPORT),
]
Email = Annotated[
    str,
    AfterValidator(_matches(_EMAIL, "an e-mail address", "hostmaster@domain01.dom")),
    _schema("email", "An e-mail address.", "hostmaster@domain01.dom", _EMAIL),
]
# Strict scalars: YAML's `yes` is a bool and must not become the number 1, nor "2" the number 2.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
TimeoutMs = Annotated[int, Strict(), Field(ge=1000, le=86_400_000)]
MAX_SIZE_GB = 2_147_483_647  # Cinder's and Manila's API and database limit for a size (a 32-bit integer)


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError(f"is empty, got {value!r}; write a value, or remove the key to use the default")
    if value != value.strip():
        raise ValueError(f"has spaces around it, got {value!r}; use {value.strip()!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"contains a line break or control character, got {value!r}; write it on one line")
    return value


Text = Annotated[str, AfterValidator(_text)]

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _an_id(what: str, command: str) -> Any:
    """OpenStack IDs (UUIDs) where terraform-provider-openstack 3.0 takes an ID, never a name."""
    def check(value: str) -> str:
        if not re.match(_UUID, value):
            raise ValueError(f"is not a {what} ID (a UUID), got {value!r}; give its ID, e.g. from "
                             f"`{command} {value} -f value -c id`")
        return value

    return check


def _a_name(what: str, command: str, argument: str) -> Any:
    """Names where the provider looks a resource up by name (image_name, flavor_name, a floating-IP pool)."""
    def check(value: str) -> str:
        if re.match(_UUID, value):
            article = "an" if what[0] in "aeiou" else "a"
            raise ValueError(f"is {article} {what} ID, got {value!r}; give the {what}'s name (`{command} {value} "
                             f"-f value -c name`): mailstrata passes it as {argument}, which takes a name")
        return value

    return check


NetworkId = Annotated[
    str, AfterValidator(_text), AfterValidator(_an_id("Neutron network", "openstack network show")),
    _schema("uuid", "A Neutron network ID.", "6f1c1c3e-0000-4000-8000-00000000a001", _UUID),
]
SubnetId = Annotated[
    str, AfterValidator(_text), AfterValidator(_an_id("Neutron subnet", "openstack subnet show")),
    _schema("uuid", "A Neutron subnet ID.", "6f1c1c3e-0000-4000-8000-00000000a002", _UUID),
]
ShareNetworkId = Annotated[
    str, AfterValidator(_text), AfterValidator(_an_id("Manila share network", "openstack share network show")),
    _schema("uuid", "A Manila share network ID.", "6f1c1c3e-0000-4000-8000-00000000a004", _UUID),
]
NetworkName = Annotated[
    str, AfterValidator(_text), AfterValidator(_a_name("network", "openstack network show", "the floating-IP pool")),
]
FlavorName = Annotated[
    str, AfterValidator(_text), AfterValidator(_a_name("flavor", "openstack flavor show", "flavor_name")),
]
ImageName = Annotated[
    str, AfterValidator(_text), AfterValidator(_a_name("image", "openstack image show", "image_name")),
]


def _url(schemes: tuple[str, ...]) -> Any:
    parts = [r"file:///\S+" if k == "file" else rf"{k}://[^\s/?#]+\S*" for k in schemes]
    pattern = re.compile(rf"^(?:{'|'.join(parts)})$")

    def check(value: str) -> str:
        if not pattern.match(value):
            kinds = ", ".join(f"{k}://" for k in schemes[:-1]) + f" or {schemes[-1]}://"
            raise ValueError(f"is not an {kinds} URL, got {value!r}; write it like "
                             f"{schemes[0]}://host.domain01.dom/path")
        return value

    return check


Url = Annotated[str, AfterValidator(_url(("http", "https"))),
                _schema("url", "An http:// or https:// URL.", "https://host.domain01.dom/path")]
RepoUrl = Annotated[str, AfterValidator(_url(("http", "https", "file"))),
                    _schema("url", "An https://, http:// or file:// URL.", "https://packages.domain01.dom/sogo")]


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _is_time_zone(value: str) -> bool:
    """`value` names a zone of this machine's time zone database: one file lookup (`ZoneInfo`); the whole
    database (`available_timezones`, a scan of every file) only when that fails (issue 8). The names the scan
    leaves out, and so refuses, are refused without the lookup."""
    if not value.startswith(("posix/", "right/")) and value not in ("posixrules", "localtime"):
        try:
            zoneinfo.ZoneInfo(value)
            return True
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    zones = _time_zones()
    # Without a time zone database on this machine, only the shape can be checked.
    return value in zones if zones else re.match(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$", value) is not None


def _timezone(value: str) -> str:
    if not _is_time_zone(value):
        zones = _time_zones()
        near = difflib.get_close_matches(value, sorted(zones), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"is not a time zone, got {value!r}; use an IANA name such as Europe/Madrid or UTC{hint}")
    return value


TimeZone = Annotated[str, AfterValidator(_timezone),
                     _schema("time-zone", "An IANA time zone name.", "Europe/Madrid")]


def _spf(value: str) -> str:
    bare = value.strip().strip("'\"")
    if '"' in value or "\\" in value:
        fix = f"write it without quotes: {bare}" if bare.startswith("v=spf1") else "remove them"
        raise ValueError(f"contains quotes or backslashes, got {value!r}; {fix} (mailstrata quotes the TXT record "
                         "itself)")
    if value != "v=spf1" and not value.startswith("v=spf1 "):
        raise ValueError(f"is not an SPF record, got {value!r}; start it with v=spf1, e.g. v=spf1 mx ~all")
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"contains characters a TXT record cannot carry, got {value!r}; use printable ASCII only")
    if len(value) > TXT_STRING_MAX:
        # Designate counts the two quotes in: 253 characters inside them (`mailstrata.dns.TXT_STRING_MAX`).
        raise ValueError(f"is {len(value)} characters, got {value[:40]!r}...; one TXT string holds at most "
                         f"{TXT_STRING_MAX} in Designate: use include: mechanisms")
    return value


Spf = Annotated[str, AfterValidator(_spf),
                _schema("spf", "An SPF record without quotes.", "v=spf1 ip4:192.0.2.25 ~all")]


def _ip_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"is not an IPv4 or IPv6 address, got {value!r}; write one address, e.g. 192.0.2.25 "
                         "(no prefix: each egress address gets a PTR and a forward name)") from None
    return str(address)


IpAddress = Annotated[
    str, AfterValidator(_ip_address), _schema("ip-address", "An IPv4 or IPv6 address.", "192.0.2.25")
]
MailLayerName = Literal["smtp_in", "smtp_out", "mailstore", "webmail"]


Items = Sequence[tuple[int, Any]]  # the items of a list that validated, with their index in the list
ListCheck = Callable[[Items], list[Problem]]


class _ListChecks:
    """`Annotated[tuple[X, ...], _ListChecks(*checks)]`: `checks` see the items that validated, each with its
    index, so a bad item does not hide a repeat further down. Their problems come at `[i]` paths, after the
    items' own."""

    def __init__(self, *checks: ListCheck) -> None:
        self.checks = checks

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        item = get_args(source)[0]
        checks = self.checks
        adapter: list[TypeAdapter[Any]] = []

        def valid_items(value: Sequence[Any], exc: ValidationError, context: Any) -> Items:
            bad = {e["loc"][0] for e in exc.errors() if e["loc"] and isinstance(e["loc"][0], int)}
            if not adapter:
                adapter.append(TypeAdapter(item))
            out = []
            for i, v in enumerate(value):
                if i not in bad:
                    try:
                        out.append((i, adapter[0].validate_python(v, context=context)))
                    except ValidationError:
                        continue
            return out

        def validate(value: Any, inner: core_schema.ValidatorFunctionWrapHandler,
                     info: core_schema.ValidationInfo) -> Any:
            try:
                out = inner(value)
            except ValidationError as exc:
                if not isinstance(value, list | tuple):
                    raise
                problems = [p for check in checks for p in check(valid_items(value, exc, info.context))]
                if not problems:
                    raise
                raise _with_problems(exc, value, problems) from None
            _raise_if_any([p for check in checks for p in check(list(enumerate(out)))])
            return out

        return core_schema.with_info_wrap_validator_function(validate, handler(source))


def _with_problems(exc: ValidationError, value: Any, problems: Sequence[Problem]) -> ValidationError:
    """`exc`'s errors followed by `problems` (paths relative to the validated value), as one ValidationError."""
    details: list[InitErrorDetails] = []
    for e in exc.errors(include_url=False):
        detail = InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"])
        if "ctx" in e:
            detail["ctx"] = e["ctx"]
        details.append(detail)
    details.append(InitErrorDetails(type="value_error", loc=(), input=value, ctx={"error": SubProblems(problems)}))
    return ValidationError.from_exception_data(exc.title, details)


def _unique(key: str, what: str) -> ListCheck:
    def check(items: Items) -> list[Problem]:
        first: dict[Any, int] = {}
        problems = []
        for i, v in items:
            if v in first:
                problems.append(Problem(f"[{i}]", f"repeats {key}[{first[v]}], got {str(v)!r}; list each {what} "
                                                  "once"))
            first.setdefault(v, i)
        return problems

    return check


def _not_world(what: str, fix: str) -> ListCheck:
    def check(items: Items) -> list[Problem]:
        return [Problem(f"[{i}]", f"opens {what} to the whole Internet, got {c!r}; {fix}")
                for i, c in items if ipaddress.ip_network(c).prefixlen == 0]

    return check


# ---- cross-field rules -------------------------------------------------------------------------------


class _Unknown(Exception):
    """A rule read a field that did not validate: the rule is skipped (the field's own problem is reported)."""


def _rule(fn: Callable[[Any], Iterable[Problem]]) -> Callable[[Any], Iterable[Problem]]:
    """Mark a model method as a cross-field rule: it returns problems at paths relative to the model, and runs
    whenever the fields it reads validated, whatever happened to the others."""
    fn.__mailstrata_rule__ = True  # type: ignore[attr-defined]
    return fn


@cache
def _rules_of(cls: type) -> tuple[Callable[[Any], Iterable[Problem]], ...]:
    """The `@_rule` methods of `cls`, in the order they are defined (base classes first)."""
    seen: dict[str, Callable[[Any], Iterable[Problem]]] = {}
    for klass in reversed(cls.__mro__):
        # A copy: reading an attribute may build a deferred model's validator, which adds attributes to the class.
        for name, attr in list(vars(klass).items()):
            if getattr(attr, "__mailstrata_rule__", False):
                seen[name] = attr
    return tuple(seen.values())


class _Partial:
    """The fields of a model that validated, when some did not: reading a broken field raises `_Unknown`."""

    def __init__(self, cls: type[BaseModel], values: dict[str, Any], given: set[str]) -> None:
        self.__dict__.update(_cls=cls, _values=values, model_fields_set=given)

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._cls.model_fields:
            raise _Unknown(name)
        attr = getattr(self._cls, name)
        return types.MethodType(attr, self) if isinstance(attr, types.FunctionType) else attr


def _apply(rules: Sequence[Callable[[Any], Iterable[Problem]]], model: Any) -> list[Problem]:
    problems: list[Problem] = []
    for rule in rules:
        try:
            problems += list(rule(model))
        except _Unknown:
            continue
    return problems


@cache
def _field_adapter(cls: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = cls.model_fields[name]
    tp: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation  # type: ignore[valid-type]
    return TypeAdapter(tp)


def _valid_fields(cls: type[BaseModel], data: Mapping[str, Any], exc: ValidationError,
                  context: Any) -> dict[str, Any]:
    """The fields of `data` without an error in `exc`, validated one by one, and the defaults of absent ones."""
    bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if name in bad:
            continue
        if name in data:
            try:
                out[name] = _field_adapter(cls, name).validate_python(data[name], context=context)
            except ValidationError:
                continue
        elif not field.is_required():
            out[name] = field.get_default(call_default_factory=True)
    return out


class _Model(BaseModel):
    # defer_build: a model's validator is built when first used (the config's one validation builds them all at
    # once), not as each class is defined; the JSON schema is the same.
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, validate_default=True,
                              defer_build=True)

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        rules = _rules_of(cls)
        if not rules:
            return handler(data)
        try:
            model = handler(data)
        except ValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            partial = _Partial(cls, _valid_fields(cls, data, exc, info.context), {str(k) for k in data})
            problems = _apply(rules, partial)
            if not problems:
                raise
            raise _with_problems(exc, data, problems) from None
        _raise_if_any(_apply(rules, model))
        return model


# ---- secrets ----------------------------------------------------------------------------------------


class SecretRef(_Model):
    """A secret is never written in the config: name the sensitive Terraform variable that carries it."""

    variable: VariableName = Field(
        description="Name of a sensitive Terraform variable; set it with TF_VAR_<name> when you run cdktf deploy."
    )


# What to suggest when a secret is given as a literal, by field name.
_SUGGESTED_VARIABLE = {"bind_password": "ad_bind_password", "certificate": "tls_certificate",
                       "private_key": "tls_private_key"}


def _secret_ref(value: object, info: ValidationInfo) -> object:
    if isinstance(value, dict | SecretRef):
        return value
    name = _SUGGESTED_VARIABLE.get(info.field_name or "", "my_secret")
    fix = f"write {{variable: {name}}} and set TF_VAR_{name} when you run cdktf deploy"
    if value is None:
        raise ValueError(f"must name a sensitive Terraform variable, got null; {fix}")
    # The value itself is never echoed: it may be a real password.
    kind = "text" if isinstance(value, str) else "a list" if isinstance(value, list) else "a number"
    raise ValueError(f"is a literal secret, got {kind} (not shown); secrets never go in the config: {fix}")


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]


# ---- sections ---------------------------------------------------------------------------------------


class BackendType(StrEnum):
    """Where Terraform keeps its state."""

    LOCAL = "local"  # a file in the project's state/ folder, outside the synthesized output
    S3 = "s3"  # an S3-compatible bucket (Ceph RGW, Swift s3api)


class Backend(_Model):
    """Where Terraform keeps state. Default: a local file in state/, beside the output folder."""

    type: BackendType = Field(
        default=BackendType.LOCAL,
        description="local: a state file in the project's state/ folder (one person). s3: an S3-compatible "
        "bucket such as Ceph RGW or Swift s3api (teams).",
    )
    path: Text | None = Field(
        default=None,
        description="local: state file, relative to the project folder (the folder holding the output folder, "
        "cdktf.out), outside the output so no synth can remove it. Default: state/<name>.tfstate.",
    )
    bucket: Text | None = Field(default=None, description="s3: bucket name. Required when type is s3.")
    key: Text | None = Field(
        default=None, description="s3: object key of the state. Default: mailstrata/<name>.tfstate."
    )
    endpoint: Url | None = Field(
        default=None, description="s3: endpoint URL of the S3-compatible store. Required when type is s3."
    )
    region: Text = Field(default="us-east-1", description="s3: region name the store expects.")

    @_rule
    def _s3_bucket(self) -> list[Problem]:
        return _s3_setting(self, "bucket", "bucket name")

    @_rule
    def _s3_key(self) -> list[Problem]:
        return _s3_setting(self, "key", None)

    @_rule
    def _s3_endpoint(self) -> list[Problem]:
        return _s3_setting(self, "endpoint", "endpoint URL of the store")

    @_rule
    def _local_path(self) -> list[Problem]:
        problems = []
        if self.type is BackendType.S3 and self.path is not None:
            problems.append(Problem("path", f"is only used when type is local, got {self.path!r}; remove it"))
        if self.path is not None and (self.path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", self.path)):
            problems.append(Problem("path", f"must be relative so synth output is the same on every machine, got "
                                            f"{self.path!r}; use a relative path such as state/mail.tfstate"))
        return problems


def _s3_setting(backend: Backend, name: str, required: str | None) -> list[Problem]:
    """An s3 setting is required (when `required` names it) with type s3, and refused with type local."""
    value = getattr(backend, name)
    if backend.type is BackendType.S3 and value is None and required is not None:
        return [Problem(name, f"is required when type is s3; give the {required}")]
    if backend.type is not BackendType.S3 and value is not None:
        return [Problem(name, f"is only used when type is s3, got {value!r}; remove it or set type: s3")]
    return []


class Network(_Model):
    """Existing networks the platform plugs into (the platform creates no networks or routers)."""

    network_id: NetworkId = Field(description="Neutron network of the servers. Its ID (a UUID), not its name.")
    subnet_id: SubnetId = Field(description="Neutron subnet of the servers. Its ID (a UUID), not its name.")
    subnet_cidr: Cidr = Field(description="CIDR of subnet_id (security rules and mynetworks need it offline).")
    vip_subnet_id: SubnetId = Field(description="Subnet the load balancers' VIPs are allocated on. Its ID (a UUID).")
    vip_subnet_cidr: Cidr = Field(
        description="CIDR of vip_subnet_id, where clients reach the VIPs. The load balancers reach the members "
        "from the members' own subnet (mailstrata/octavia.py). Either the servers' subnet itself or one that does "
        "not overlap it."
    )
    external_network: NetworkName = Field(
        default="public",
        description="Floating-IP pool for Internet-facing VIPs. The external network's name, not its ID.",
    )
    admin_cidrs: Annotated[
        tuple[Cidr, ...], _ListChecks(_not_world("SSH", "list your admin networks, e.g. 10.99.0.0/24"))
    ] = Field(
        min_length=1, description="The only sources allowed to SSH to the servers. 0.0.0.0/0 is refused."
    )
    client_cidrs: Annotated[
        tuple[Cidr, ...],
        _ListChecks(_not_world("IMAP, POP3, ManageSieve and submission", "list your corporate client networks")),
    ] = Field(
        default=("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        description="Corporate clients allowed on IMAP, POP3, ManageSieve and submission. 0.0.0.0/0 is refused.",
    )

class AttributeMapping(_Model):
    """Which directory attributes and object classes the platform reads. Defaults match Microsoft AD."""

    login: Text = Field(default=defaults.AD_ATTRIBUTES.login, description="Attribute users log in with.")
    mail: Text = Field(default=defaults.AD_ATTRIBUTES.mail, description="Attribute holding the user's address.")
    quota: Text = Field(
        default=defaults.AD_ATTRIBUTES.quota, description="Attribute holding the mailbox quota in bytes."
    )
    person_class: Text = Field(default=defaults.AD_ATTRIBUTES.person_class, description="Object class of users.")
    group_class: Text = Field(
        default=defaults.AD_ATTRIBUTES.group_class, description="Object class of groups (distribution lists)."
    )
    member: Text = Field(default=defaults.AD_ATTRIBUTES.member, description="Attribute listing a group's members.")

    def attribute_map(self) -> AttributeMap:
        """The typed map the templates read (its `display_name` and `aliases` keep AD's; the config does not
        offer them)."""
        return AttributeMap(login=self.login, mail=self.mail, quota=self.quota, person_class=self.person_class,
                            group_class=self.group_class, member=self.member)


class Directory(_Model):
    """The existing Active Directory (or LDAP / Samba 4 AD) every layer authenticates against."""

    urls: Annotated[tuple[LdapUrl, ...], _ListChecks(_unique("urls", "directory server"))] = Field(
        min_length=1,
        description="LDAP URLs of the directory servers (domain controllers), tried in order: every daemon moves to "
        "the next when one cannot be reached.",
    )
    tls: LdapTls = Field(
        default=defaults.DIRECTORY_TLS,
        description="ldaps: ldaps:// URLs. starttls: ldap:// URLs upgraded with StartTLS. plain: ldap:// URLs in "
        "clear text (labs only: the bind password crosses the network).",
    )
    ca_cert_file: Text | None = Field(
        default=None,
        description="PEM CA certificate of the directory, relative to the config file. "
        "Default: the servers' system trust store.",
    )
    base_dn: Dn = Field(description="Where users and groups are searched.")
    bind_dn: Dn = Field(description="The service account every layer binds as.")
    bind_password: Secret = Field(
        default=SecretRef(variable=defaults.BIND_PASSWORD_VARIABLE),
        description="Sensitive Terraform variable holding the bind password (never the password itself).",
    )
    attributes: AttributeMapping = Field(default=AttributeMapping(), description=AttributeMapping.__doc__)

    @field_validator("ca_cert_file")
    @classmethod
    def _ca_cert(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(value) if base is None else Path(base) / value
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the file ({exc.strerror}), got {value!r}; give a PEM file's path "
                             "relative to the config file") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"is not a PEM certificate, got {value!r}; give a file with -----BEGIN CERTIFICATE-----")
        return str(path)

    @_rule
    def _tls_matches_urls(self) -> list[Problem]:
        problems = []
        for i, u in enumerate(self.urls):
            if self.tls is LdapTls.LDAPS and not u.startswith("ldaps://"):
                problems.append(Problem(f"urls[{i}]", f"is not an ldaps:// URL but tls is ldaps, got {u!r}; "
                                                      "use ldaps:// or set tls: starttls"))
            if self.tls is not LdapTls.LDAPS and u.startswith("ldaps://"):
                problems.append(Problem(f"urls[{i}]", f"is an ldaps:// URL but tls is {self.tls.value}, got {u!r}; "
                                                      "set tls: ldaps or use an ldap:// URL"))
        return problems


class Layer(_Model):
    """One group of identical servers for one role."""

    count: Int = Field(default=defaults.LAYER_COUNT, ge=1, le=500, description="Number of servers.")
    flavor: FlavorName = Field(default=defaults.FLAVOR, description="Nova flavor of the servers. Its name, not its ID.")
    image: ImageName = Field(
        default=defaults.IMAGE, description="Glance image of the servers. Its name, not its ID."
    )
    key_pair: Text | None = Field(default=None, description="Nova key pair for SSH. Default: no key pair.")
    spool_gb: Int = Field(
        default=defaults.SPOOL_GB, ge=1, le=16384,
        description="Size of each server's spool volume (GB): a Cinder volume per server that holds its mail queue "
        "and is attached to the server's replacement (smtp_in, smtp_out, mailstore; webmail queues nothing).",
    )
    affinity: Affinity = Field(
        default=defaults.AFFINITY,
        description="Server-group policy. anti-affinity: never two servers of the layer on one hypervisor. "
        "soft-anti-affinity: spread when possible, still boot when not.",
    )
    network_id: NetworkId | None = Field(
        default=None, description="Neutron network (its ID). Default: network.network_id."
    )
    subnet_id: SubnetId | None = Field(
        default=None, description="Neutron subnet; give subnet_cidr with it. Default: network.subnet_id."
    )
    subnet_cidr: Cidr | None = Field(
        default=None, description="CIDR of this layer's subnet_id. Default: network.subnet_cidr."
    )

    @_rule
    def _subnet_pair(self) -> list[Problem]:
        if (self.subnet_id is None) != (self.subnet_cidr is None):
            given, other = ("subnet_id", "subnet_cidr") if self.subnet_cidr is None else ("subnet_cidr", "subnet_id")
            return [Problem(other, f"is required when {given} is set, got nothing; give both or neither")]
        return []


class ListenerOverride(_Model):
    """Change one listener of a layer's VIP, or add one. Unset fields keep the platform's default."""

    layer: MailLayerName = Field(description="The layer whose VIP carries the listener.")
    port: Port = Field(description="Listener port on the VIP (and the members' port).")
    protocol: ListenerProtocol | None = Field(
        default=None,
        description="TCP, HTTP, HTTPS (TLS passed through) or TERMINATED_HTTPS (TLS ends on the load balancer; "
        "needs tls_container_ref). Default: the platform's protocol for the port; required for a new port.",
    )
    pool_protocol: PoolProtocol | None = Field(
        default=None,
        description="TCP, HTTP or PROXY (PROXY protocol v1, so the member sees the client's address; only on "
        "ports whose daemon reads it). Default: the platform's pool protocol for the port, else TCP.",
    )
    algorithm: Algorithm | None = Field(
        default=None,
        description="ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP. Default: the platform's algorithm for the "
        "port, else LEAST_CONNECTIONS.",
    )
    source_ip_persistence: Bool | None = Field(
        default=None, description="Keep a client on one member. Default: the platform's choice for the port."
    )
    timeout_client_data_ms: TimeoutMs | None = Field(
        default=None,
        description="Idle timeout towards the client, in ms. Default: 31 minutes for IMAP, POP3 and ManageSieve "
        "(Octavia's 50 s would cut IMAP IDLE), 60 minutes for webmail 443, else 5 minutes.",
    )
    timeout_member_data_ms: TimeoutMs | None = Field(
        default=None,
        description="Idle timeout towards the member, in ms. Default: the same platform default as "
        "timeout_client_data_ms.",
    )
    allowed_cidrs: tuple[Cidr, ...] | None = Field(
        default=None,
        description="Sources allowed on the listener. Default: everyone on smtp_in 25 and webmail 80/443; "
        "network.client_cidrs and the webmail layer's subnet on submission, POP3, IMAP and ManageSieve; the "
        "smtp_in and smtp_out layers' subnets on mailstore 25; the servers' subnets elsewhere.",
    )
    tls_container_ref: Text | None = Field(
        default=None,
        description="Barbican container with the certificate. Required with TERMINATED_HTTPS, else unused. "
        "Default: none.",
    )

    def _effective(self) -> tuple[Role, ListenerProtocol | None, PoolProtocol]:
        """The role, and the protocols this listener ends up with (its own, else the platform's for the port)."""
        role = Role(self.layer)
        default = next((d for d in DEFAULT_LISTENERS[role] if d.port == self.port), None)
        protocol = self.protocol or (default.protocol if default else None)
        pool = self.pool_protocol or (default.pool_protocol if default else PoolProtocol.TCP)
        return role, protocol, pool

    @_rule
    def _protocols(self) -> list[Problem]:
        role, protocol, pool = self._effective()
        problems = []
        if protocol is None:
            ports = ", ".join(str(p) for p in sorted(d.port for d in DEFAULT_LISTENERS[role]))
            problems.append(Problem("protocol", f"is required for port {self.port}, which is not a default listener "
                                                f"of {self.layer} (defaults: {ports}); give the protocol"))
        capable = PROXY_CAPABLE.get(role, frozenset())
        if self.pool_protocol is PoolProtocol.PROXY and self.port not in capable:
            where = f"; PROXY only on {', '.join(map(str, sorted(capable)))}" if capable else ""
            problems.append(Problem("pool_protocol", f"{self.layer} cannot read the PROXY protocol on port "
                                                     f"{self.port}, got 'PROXY'; use TCP{where}"))
        elif pool is PoolProtocol.PROXY and protocol not in (None, ListenerProtocol.TCP):
            problems.append(Problem("protocol", f"a PROXY pool needs a TCP listener, got {protocol.value!r}; "
                                                "use TCP or set pool_protocol: TCP"))
        if pool is PoolProtocol.HTTP and protocol not in (None, ListenerProtocol.HTTP,
                                                          ListenerProtocol.TERMINATED_HTTPS):
            problems.append(Problem("pool_protocol", f"an HTTP pool needs an HTTP or TERMINATED_HTTPS listener, got "
                                                     f"protocol {protocol.value!r}; set pool_protocol: TCP or "
                                                     "protocol: HTTP"))
        return problems

    @_rule
    def _not_the_internal_relay(self) -> list[Problem]:
        if (Role(self.layer), self.port) != (Role.SMTP_OUT, RELAY):
            return []
        return [Problem("port", f"is smtp_out's internal relay, which the mailstores reach directly, got {RELAY}; "
                                "behind a load balancer the relay would see the amphora's address and relay for "
                                "whoever reaches the VIP. Remove this listener")]

    @_rule
    def _tls_container(self) -> list[Problem]:
        _, protocol, _ = self._effective()
        problems = []
        if protocol is ListenerProtocol.TERMINATED_HTTPS and not self.tls_container_ref:
            problems.append(Problem("tls_container_ref", "is required when protocol is TERMINATED_HTTPS; give the "
                                                         "Barbican container ref (openstack secret container list)"))
        if protocol is not ListenerProtocol.TERMINATED_HTTPS and self.tls_container_ref:
            problems.append(Problem("tls_container_ref", f"is only used with protocol TERMINATED_HTTPS, got "
                                                         f"{self.tls_container_ref!r}; remove it or set protocol: "
                                                         "TERMINATED_HTTPS"))
        return problems

    @_rule
    def _allowed_cidrs(self) -> list[Problem]:
        role = Role(self.layer)
        problems = []
        for i, c in enumerate(self.allowed_cidrs or ()):
            public = (role, self.port) in {(Role.SMTP_IN, 25), (Role.WEBMAIL, 443), (Role.WEBMAIL, 80)}
            if ipaddress.ip_network(c).prefixlen == 0 and not public:
                problems.append(Problem(f"allowed_cidrs[{i}]", f"opens {self.layer} port {self.port} to the whole "
                                                               f"Internet, got {c!r}; list the networks that need it"))
        return problems


def _unique_listeners(items: Items) -> list[Problem]:
    first: dict[tuple[str, int], int] = {}
    problems = []
    for i, lst in items:
        key = (lst.layer, lst.port)
        if key in first:
            problems.append(Problem(f"[{i}]", f"repeats listeners[{first[key]}], got layer {lst.layer} port "
                                              f"{lst.port}; merge the two entries"))
        first.setdefault(key, i)
    return problems


Listeners = Annotated[tuple[ListenerOverride, ...], _ListChecks(_unique_listeners)]


class Storage(_Model):
    """The NFS share holding every mailbox."""

    mode: StorageMode = Field(
        default=StorageMode.CINDER_SERVER,
        description="manila: an OpenStack Manila NFS share. cinder_server: an NFS server instance on a Cinder "
        "volume (the seed's setup). existing: a NAS that already exports the mail volume.",
    )
    size_gb: Int = Field(
        default=defaults.STORAGE_SIZE_GB, ge=1, le=MAX_SIZE_GB,
        description="manila and cinder_server: size of the share, in GB (Cinder and Manila take at most 2147483647).",
    )
    share_network_id: ShareNetworkId | None = Field(
        default=None, description="manila: share network. Default: none (for backends that need none)."
    )
    share_type: Text | None = Field(default=None, description="manila: share type. Default: the cloud's default type.")
    export: NfsExport | None = Field(
        default=None, description="existing: the NAS export as host:/path. Required when mode is existing."
    )
    flavor: FlavorName = Field(default=defaults.FLAVOR, description="cinder_server: flavor of the NFS server.")
    image: ImageName | None = Field(
        default=None, description="cinder_server: image (its name). Default: layers.mailstore.image."
    )
    volume_type: Text | None = Field(
        default=None, description="cinder_server: Cinder volume type. Default: the cloud's default type."
    )
    server_cidrs: Annotated[tuple[Cidr, ...], _ListChecks(_unique("server_cidrs", "network"))] = Field(
        default=(),
        description="manila and existing: the networks the NFS server's NFSv3 lock callbacks (rpcbind, lockd, statd) "
        "to the mailstores come from; the mailstores' security group lets them in. Default: the export's address "
        "(/32) for manila, and for existing when export names an IPv4 address; an export named by host name gets "
        "none, so give its address or subnet here.",
    )

    @_rule
    def _export(self) -> list[Problem]:
        if self.mode is StorageMode.EXISTING and self.export is None:
            return [Problem("export", "is required when mode is existing; give the NAS export as host:/path, "
                                      "e.g. nas1.domain01.dom:/export/mail")]
        return []

    @_rule
    def _size_gb(self) -> list[Problem]:
        return _mode_setting(self, "size_gb")

    @_rule
    def _share_network_id(self) -> list[Problem]:
        return _mode_setting(self, "share_network_id")

    @_rule
    def _share_type(self) -> list[Problem]:
        return _mode_setting(self, "share_type")

    @_rule
    def _export_mode(self) -> list[Problem]:
        return _mode_setting(self, "export")

    @_rule
    def _flavor(self) -> list[Problem]:
        return _mode_setting(self, "flavor")

    @_rule
    def _image(self) -> list[Problem]:
        return _mode_setting(self, "image")

    @_rule
    def _volume_type(self) -> list[Problem]:
        return _mode_setting(self, "volume_type")

    @_rule
    def _server_cidrs(self) -> list[Problem]:
        return _mode_setting(self, "server_cidrs")


# The storage settings each mode reads; the others are refused, not silently ignored.
_MODE_SETTINGS: dict[str, tuple[StorageMode, ...]] = {
    "size_gb": (StorageMode.MANILA, StorageMode.CINDER_SERVER),
    "share_network_id": (StorageMode.MANILA,), "share_type": (StorageMode.MANILA,),
    "export": (StorageMode.EXISTING,),
    "flavor": (StorageMode.CINDER_SERVER,), "image": (StorageMode.CINDER_SERVER,),
    "volume_type": (StorageMode.CINDER_SERVER,),
    "server_cidrs": (StorageMode.MANILA, StorageMode.EXISTING),
}


def _mode_setting(storage: Storage, name: str) -> list[Problem]:
    """A setting given for a mode other than storage.mode is refused (mode existing has no size, ...)."""
    modes = _MODE_SETTINGS[name]
    value = getattr(storage, name)
    if storage.mode in modes or name not in storage.model_fields_set or value is None:
        return []
    names = " or ".join(m.value for m in modes)
    return [Problem(name, f"is only used when mode is {names}, got {_shown(value)}; remove it or set mode: "
                          f"{modes[0].value}")]


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class Dns(_Model):
    """Host names of the platform and, optionally, Designate zones and records."""

    zone: Domain = Field(default="cloud0.hc.mycompany.dom", description="Zone holding the platform's host names.")
    designate: Bool = Field(default=False, description="Create the zone and records in Designate.")
    mail_domain_zones: Bool = Field(
        default=False, description="Also create each mail domain's zone and its mail records in Designate. When "
        "false, the mail domains' records are only in the dns_records output, for the zones that exist elsewhere.")
    email: Email = Field(default="hostmaster@domain01.dom", description="SOA contact of created zones.")
    ttl: Int = Field(default=300, ge=30, le=2_147_483_647, description="TTL of created records, in seconds.")
    egress_addresses: Annotated[
        tuple[IpAddress, ...], _ListChecks(_unique("egress_addresses", "address"))
    ] = Field(
        default=(),
        description="Public addresses smtp-out's servers send from (SPF, their HELO names' A/AAAA records, the PTR "
        "step). Default: looked up at plan time, the IPv4 SNAT address of the router on smtp-out's subnet; "
        "set it when mail leaves otherwise (a NAT gateway, a floating IP per server, IPv6).",
    )
    spf: Spf | None = Field(
        default=None,
        description="SPF TXT of each mail domain, verbatim. Default: v=spf1 ip4:<each egress address> ~all (only "
        "smtp-out sends; ~all leaves the verdict on other senders to DMARC).",
    )
    dmarc_policy: DmarcPolicy = Field(
        default=DmarcPolicy(defaults.DMARC_POLICY),
        description="DMARC p= of each mail domain. none: report only; quarantine or reject once the reports show "
        "every sender of the domains aligned.",
    )
    dmarc_reports: Email | None = Field(
        default=None,
        description="Address DMARC aggregate reports (rua) go to. Default: dmarc-reports@<first mail domain>, "
        "which must exist in the directory.",
    )
    tls_reports: Email | None = Field(
        default=None,
        description="Address TLS-RPT reports (RFC 8460) go to. Default: tls-reports@<first mail domain>, which "
        "must exist in the directory.",
    )

    @_rule
    def _mail_domain_zones(self) -> list[Problem]:
        if self.mail_domain_zones and not self.designate:
            return [Problem("mail_domain_zones", "is only used when designate is true, got true; remove it or set "
                                                 "designate: true")]
        return []

    @_rule
    def _email(self) -> list[Problem]:
        return self._designate_setting("email")

    @_rule
    def _ttl(self) -> list[Problem]:
        return self._designate_setting("ttl")

    def _designate_setting(self, name: str) -> list[Problem]:
        if self.designate or name not in self.model_fields_set:
            return []
        return [Problem(name, f"is only used when designate is true, got {_shown(getattr(self, name))}; remove it "
                              "or set designate: true")]


_DEAD_DNSBLS = {"sorbs.net": "SORBS closed in 2024", "njabl.org": "NJABL closed in 2013",
                "ahbl.org": "AHBL closed in 2015"}


def _live_dnsbls(items: Items) -> list[Problem]:
    problems = []
    for i, d in items:
        why = next((w for zone, w in _DEAD_DNSBLS.items() if d == zone or d.endswith("." + zone)), None)
        if why is not None:
            problems.append(Problem(f"[{i}]", f"is a dead DNSBL ({why}), got {d!r}; remove it"))
    return problems


class Spam(_Model):
    """Amavis and SpamAssassin on smtp-in, and the DNSBLs Postfix asks."""

    tag2_level: Float = Field(
        default=defaults.SPAM_TAG2_LEVEL, description="SpamAssassin score at which a message is marked as spam."
    )
    kill_level: Float = Field(
        default=defaults.SPAM_KILL_LEVEL,
        description="Score from which a message is discarded into the quarantine (the sender still gets 250). "
        "Above tag2_level, at most dsn_cutoff_level.",
    )
    dsn_cutoff_level: Float = Field(
        default=defaults.SPAM_DSN_CUTOFF_LEVEL, description="Score above which no bounce is sent."
    )
    amavis_processes: Int = Field(
        default=defaults.AMAVIS_PROCESSES, ge=1, le=200, description="amavisd $max_servers = smtp-amavis maxproc."
    )
    quarantine_days: Int = Field(
        default=defaults.SPAM_QUARANTINE_DAYS, ge=1,
        description="Days amavisd's quarantine keeps discarded mail (viruses, banned files, spam at kill_level) "
        "for release with mailstrata-quarantine; then it is deleted.",
    )
    dnsbls: Annotated[tuple[Domain, ...], _ListChecks(_unique("dnsbls", "DNSBL"), _live_dnsbls)] = Field(
        default=defaults.DNSBLS,
        description="DNSBL zones. Spamhaus refuses queries through public resolvers: use your own resolver or DQS.",
    )
    spf_reject_softfail: Bool = Field(
        default=defaults.SPF_REJECT_SOFTFAIL, description="Reject SPF softfail too, not only fail."
    )

    @_rule
    def _levels(self) -> list[Problem]:
        problems = []
        if not self.tag2_level < self.kill_level:
            problems.append(Problem("kill_level", f"must be above tag2_level {self.tag2_level:g}, got "
                                                  f"{self.kill_level:g}; raise it or lower tag2_level"))
        elif not self.kill_level <= self.dsn_cutoff_level:
            problems.append(Problem("kill_level", f"must be at most dsn_cutoff_level {self.dsn_cutoff_level:g}, got "
                                                  f"{self.kill_level:g}; lower it or raise dsn_cutoff_level"))
        return problems


class Antivirus(_Model):
    """Where freshclam, on every server running ClamAV (smtp_in, smtp_out), fetches the virus signatures."""

    database_mirror: Domain = Field(
        default=defaults.CLAMAV_DATABASE_MIRROR,
        description="freshclam's DatabaseMirror: the host serving ClamAV's signature databases (ClamAV's CDN by "
        "default; a host that mirrors it, e.g. behind a corporate proxy). Unused when private_mirror is set.",
    )
    private_mirror: Url | None = Field(
        default=None,
        description="freshclam's PrivateMirror: a private mirror's URL (e.g. one filled by cvdupdate). freshclam "
        "then asks it alone, checking for new signatures by HTTP dates instead of ClamAV's DNS record. "
        "Default: none (database_mirror).",
    )


class Quota(_Model):
    """Mailbox quotas (Dovecot); a user's own quota comes from the directory's quota attribute."""

    default_storage: Size = Field(
        default=defaults.QUOTA_STORAGE, description="Storage quota of users without a quota attribute."
    )
    default_messages: Int = Field(
        default=defaults.QUOTA_MESSAGES, ge=0, description="Message-count quota; 0 means no limit."
    )
    trash_extra: Size = Field(
        default=defaults.QUOTA_TRASH_EXTRA, description="Extra room in Trash, so users can still delete."
    )
    over_quota: OverQuota = Field(
        default=defaults.OVER_QUOTA,
        description="defer: keep the message queued until the user frees space. bounce: return it to the sender.",
    )


class MtaSts(_Model):
    """MTA-STS (RFC 8461): the policy the webmail layer serves at https://mta-sts.<domain>/.well-known/mta-sts.txt."""

    mode: MtaStsMode = Field(
        default=MtaStsMode(defaults.MTA_STS_MODE),
        description="testing: senders deliver as without MTA-STS and report failures. enforce: senders refuse to "
        "deliver unless smtp-in presents a publicly trusted certificate for its name; set it only once it does "
        "(tls.source provided with a public CA's chain). none: withdraws a published policy.",
    )
    max_age: Int = Field(
        default=defaults.MTA_STS_MAX_AGE, ge=86_400, le=MAX_AGE_LIMIT,
        description="Seconds senders cache the policy: from a day (RFC 8461 8.3's \"small\" value, for withdrawing) "
        "to 31557600 (3.2's limit); RFC 8461 expects weeks.",
    )


class Mail(_Model):
    """How the daemons treat mail."""

    spam: Spam = Field(default=Spam(), description=Spam.__doc__)
    antivirus: Antivirus = Field(default=Antivirus(), description=Antivirus.__doc__)
    quota: Quota = Field(default=Quota(), description=Quota.__doc__)
    fts: FtsBackend = Field(
        default=defaults.FTS,
        description="Dovecot full-text search. lucene: indexes inside each mailbox on NFS. solr: indexes in Solr.",
    )
    solr_url: Url = Field(default=defaults.SOLR_URL, description="fts solr: Solr core URL.")
    message_size_limit: Int = Field(
        default=defaults.MESSAGE_SIZE_LIMIT, ge=1048576,
        description="Largest message accepted, in bytes (at least 1 MiB).",
    )
    dkim_selector: DnsLabel = Field(default="mail", description="DKIM selector, the same for every domain and server.")
    mta_sts: MtaSts = Field(default=MtaSts(), description=MtaSts.__doc__)

    @_rule
    def _solr_url(self) -> list[Problem]:
        if self.fts is FtsBackend.SOLR or "solr_url" not in self.model_fields_set:
            return []
        return [Problem("solr_url", f"is only used when fts is solr, got {self.solr_url!r}; remove it or set "
                                    "fts: solr")]


class Tls(_Model):
    """The certificate of the platform's TLS endpoints (SMTP, IMAP, POP3, ManageSieve, webmail)."""

    source: TlsSource = Field(
        default=defaults.TLS_SOURCE,
        description="self_signed: made at first boot on each server; replace before production. provided: "
        "certificate and private_key from sensitive Terraform variables.",
    )
    certificate: Secret | None = Field(
        default=None, description="provided: variable holding the PEM chain. Required when source is provided."
    )
    private_key: Secret | None = Field(
        default=None, description="provided: variable holding the PEM key. Required when source is provided."
    )

    @_rule
    def _certificate(self) -> list[Problem]:
        return self._provided("certificate", "PEM chain")

    @_rule
    def _private_key(self) -> list[Problem]:
        return self._provided("private_key", "PEM key")

    def _provided(self, name: str, what: str) -> list[Problem]:
        value = getattr(self, name)
        if self.source is TlsSource.PROVIDED and value is None:
            return [Problem(name, f"is required when source is provided; give {{variable: tls_{name}}}, a sensitive "
                                  f"variable holding the {what}")]
        if self.source is not TlsSource.PROVIDED and value is not None:
            return [Problem(name, f"is only used when source is provided, got {{variable: {value.variable}}}; "
                                  "remove it or set source: provided")]
        return []


class WebmailSettings(_Model):
    """SOGo on the webmail layer."""

    sogo_repo_url: RepoUrl | None = Field(
        default=None,
        description="Yum repository with SOGo for the target OS (RHEL 7 packages are not public). "
        "Default: none; the image must then have SOGo installed, or the first boot fails.",
    )
    sogo_repo_gpg_key: RepoUrl | None = Field(
        default=None, description="URL of the key that signs sogo_repo_url's packages. Default: packages unchecked."
    )
    database_host: Text | None = Field(
        default=None,
        description="Shared MariaDB/Galera host for SOGo. Default: a local MariaDB, allowed only with one webmail "
        "server (SOGo keeps preferences, calendars and contacts in it).",
    )
    database_password: Secret | None = Field(
        default=None,
        description="Variable with the password of database_host's sogo user. Default: a generated password "
        "(local database only).",
    )
    timezone: TimeZone = Field(
        default=defaults.WEBMAIL_TIMEZONE, description="SOGo's default time zone (an IANA name)."
    )
    prefork: Int = Field(
        default=defaults.SOGO_PREFORK, ge=1, le=512, description="SOGo worker processes per server (WOWorkersCount)."
    )
    vmem_limit_mb: Int = Field(
        default=defaults.SOGO_VMEM_LIMIT_MB, ge=128, description="Memory a SOGo worker may use (SxVMemLimit)."
    )

    @_rule
    def _external_database(self) -> list[Problem]:
        if self.database_host is not None and self.database_password is None:
            return [Problem("database_password", "is required when database_host is set, got nothing; "
                                                 "write {variable: webmail_db_password}")]
        if self.database_host is None and self.database_password is not None:
            return [Problem("database_password", "is only used with database_host, got a variable; "
                                                 "remove it or set database_host")]
        return []


class Layers(_Model):
    """The server groups. smtp_in, smtp_out and mailstore are required; webmail is optional."""

    smtp_in: Layer = Field(description="The MX: Internet-facing SMTP on 25, spam and virus filtering.")
    smtp_out: Layer = Field(
        description="Authenticated relay: submission 587, the mailstores' internal relay 2525, DKIM signing."
    )
    mailstore: Layer = Field(description="POP-IMAP-LDA: Postfix delivery and Dovecot on the NFS share.")
    webmail: Layer | None = Field(default=None, description="SOGo behind nginx. Default: no webmail layer.")

    def items(self) -> list[tuple[Role, Layer]]:
        return [(r, getattr(self, r.value)) for r in MAIL_LAYER_ROLES if getattr(self, r.value) is not None]


class OsChoice(StrEnum):
    """Operating system of every server."""

    CENTOS7 = "centos7"


def _distinct_ids(items: Items) -> list[Problem]:
    """Per-domain resources are named after the domain (`zone-<domain>`, `record-MX-<domain>`), and Terraform
    names keep only letters, digits, `-` and `_`: two domains with the same letters and digits would become one
    resource, and one of them would silently not be created."""
    first: dict[str, tuple[int, str]] = {}
    problems = []
    for i, d in items:
        key = re.sub(r"[^a-z0-9]", "", d)
        if key in first and first[key][1] != d:
            j, other = first[key]
            problems.append(Problem(f"[{i}]", f"would share its Terraform resources with domains[{j}] "
                                              f"{other!r} (both read {key!r} once dots and dashes are "
                                              f"dropped), got {d!r}; serve one of the two from a second config with "
                                              "its own name"))
        first.setdefault(key, (i, d))
    return problems


Domains = Annotated[tuple[Domain, ...], _ListChecks(_unique("domains", "mail domain"), _distinct_ids)]


def _listener_problems(layers: Layers, listeners: Sequence[ListenerOverride]) -> list[Problem]:
    present = {r.value for r, _ in layers.items()}
    return [
        Problem(f"listeners[{i}].layer", f"names a layer that is not configured, got {lst.layer!r}; add "
                                         f"layers.{lst.layer} or remove this listener")
        for i, lst in enumerate(listeners) if lst.layer not in present
    ]


def _subnet_problems(network: Network, layers: Layers) -> list[Problem]:
    """Security rules and mynetworks tell the layers and the load balancers apart by CIDR: each subnet has one
    CIDR, and two subnets never overlap."""
    subnets = [("network.subnet", network.subnet_id, network.subnet_cidr),
               ("network.vip_subnet", network.vip_subnet_id, network.vip_subnet_cidr)]
    subnets += [(f"layers.{role.value}.subnet", lc.subnet_id, lc.subnet_cidr)
                for role, lc in layers.items() if lc.subnet_id is not None and lc.subnet_cidr is not None]
    problems = [
        Problem(f"layers.{role.value}.subnet_id", f"is required when network_id is not network.network_id, got "
                                                  f"nothing (network.subnet_id is a subnet of {network.network_id}); "
                                                  "give this layer's subnet_id and subnet_cidr")
        for role, lc in layers.items()
        if lc.network_id is not None and lc.network_id != network.network_id and lc.subnet_id is None
    ]
    for j, (at, sid, cidr) in enumerate(subnets):
        net = ipaddress.ip_network(cidr)
        for other_at, other_id, other_cidr in subnets[:j]:
            other = ipaddress.ip_network(other_cidr)
            if sid == other_id and net != other:
                problems.append(Problem(f"{at}_cidr", f"differs from {other_at}_cidr {other_cidr} for the same "
                                                      f"subnet {sid}, got {cidr!r}; one subnet has one CIDR: use "
                                                      f"{other_cidr}, or give this layer its own subnet_id"))
                break
            if sid != other_id and net.version == other.version and net.overlaps(other):  # type: ignore[arg-type]
                how = "is the same network as" if net == other else "overlaps"
                problems.append(Problem(f"{at}_cidr", f"{how} {other_at}_cidr {other_cidr}, which belongs to "
                                                      f"another subnet ({other_id}), got {cidr!r}; give each subnet "
                                                      f"its own CIDR, or write {at}_id: {other_id} if it is the "
                                                      "same subnet"))
                break
    return problems


# Where the config names a sensitive Terraform variable.
_SECRET_FIELDS = (("directory", "bind_password"), ("webmail", "database_password"), ("tls", "certificate"),
                  ("tls", "private_key"))


def _secret_problems(sections: Mapping[str, Any]) -> list[Problem]:
    """Each secret has its own variable: one variable for two secrets would give both the same value and
    declare the variable twice (one declaration, and its validation, would silently replace the other)."""
    first: dict[str, str] = {}
    problems = []
    for section, name in _SECRET_FIELDS:
        ref = getattr(sections.get(section), name, None)
        if ref is None:
            continue
        path = f"{section}.{name}"
        if ref.variable in first:
            problems.append(Problem(path, f"names the variable of {first[ref.variable]}, got {{variable: "
                                          f"{ref.variable}}}; give each secret its own variable, e.g. "
                                          f"{{variable: {_DISTINCT_VARIABLE[path]}}}"))
        first.setdefault(ref.variable, path)
    return problems


_DISTINCT_VARIABLE = {"directory.bind_password": "ad_bind_password", "webmail.database_password": "webmail_db_password",
                      "tls.certificate": "tls_certificate", "tls.private_key": "tls_private_key"}


def _dns_problems(domains: tuple[str, ...], dns: Dns) -> list[Problem]:
    if not (dns.designate and dns.mail_domain_zones):
        return []
    return [Problem(f"domains[{i}]", f"is also dns.zone, and dns.mail_domain_zones would create that Designate zone "
                                     f"a second time, got {d!r}; use another dns.zone, such as hosts.{d}")
            for i, d in enumerate(domains) if d == dns.zone]


def _webmail_problems(layers: Layers, webmail: WebmailSettings) -> list[Problem]:
    web = layers.webmail
    if web is None and webmail.model_fields_set:
        keys = ", ".join(sorted(webmail.model_fields_set))
        return [Problem("webmail", f"is only used with layers.webmail, got settings for {keys}; remove it or add "
                                   "the layer")]
    if web is not None and web.count > 1 and webmail.database_host is None:
        # Each server's own MariaDB would give a user different preferences, calendars and contacts
        # depending on which server the load balancer picks. Reported at the count: the user acts there, or adds
        # a webmail: section that may not exist yet.
        return [Problem("layers.webmail.count", f"needs webmail.database_host with more than one server, got "
                                                f"{web.count}; set count: 1, or give webmail.database_host, a "
                                                "shared MariaDB/Galera host")]
    return []


def cross_section_problems(sections: Mapping[str, Any]) -> list[Problem]:
    """Rules that span top-level sections, with paths from the top. `sections` holds the valid top-level values
    by key; a rule runs when every section it needs is there, so the loader also runs them when other sections
    are broken, and one report lists everything."""
    s = sections
    problems = []
    if "layers" in s and "listeners" in s:
        problems += _listener_problems(s["layers"], s["listeners"])
    if "network" in s and "layers" in s:
        problems += _subnet_problems(s["network"], s["layers"])
    problems += _secret_problems(s)
    if "domains" in s and "dns" in s:
        problems += _dns_problems(s["domains"], s["dns"])
    if "layers" in s and "webmail" in s:
        problems += _webmail_problems(s["layers"], s["webmail"])
    return problems


class PlatformConfig(_Model):
    """A whole mail platform: one stack."""

    model_config = ConfigDict(title="mailstrata platform config")

    name: StackName = Field(default="mail", description="Stack name and prefix of every OpenStack resource name.")
    os: OsChoice = Field(default=OsChoice(defaults.OS), description="Operating system of every server.")
    region: Text | None = Field(
        default=None, description="OpenStack region. Default: from clouds.yaml or OS_REGION_NAME."
    )
    cloud: Text | None = Field(default=None, description="clouds.yaml entry. Default: OS_CLOUD or the OS_* variables.")
    backend: Backend = Field(default=Backend(), description=Backend.__doc__)
    domains: Domains = Field(
        min_length=1, description="Mail domains served; the first is the primary."
    )
    dns: Dns = Field(default=Dns(), description=Dns.__doc__)
    network: Network = Field(description=Network.__doc__)
    directory: Directory = Field(description=Directory.__doc__)
    storage: Storage = Field(default=Storage(), description=Storage.__doc__)
    layers: Layers = Field(description=Layers.__doc__)
    listeners: Listeners = Field(
        default=(),
        description="Changes to the VIPs' default listeners, or extra listeners. Default: the platform's listeners "
        "(smtp_in 25; smtp_out 587; mailstore 25, 110, 143, 993, 995, 4190; webmail 80, 443).",
    )
    mail: Mail = Field(default=Mail(), description=Mail.__doc__)
    tls: Tls = Field(default=Tls(), description=Tls.__doc__)
    webmail: WebmailSettings = Field(default=WebmailSettings(), description=WebmailSettings.__doc__)
    floating_ips: Annotated[
        tuple[Literal["smtp_in", "webmail"], ...], _ListChecks(_unique("floating_ips", "layer"))
    ] = Field(
        default=("smtp_in", "webmail"), description="Layers whose VIP gets a floating IP (public exposure)."
    )

    @model_validator(mode="after")
    def _cross_sections(self) -> PlatformConfig:
        _raise_if_any(cross_section_problems({name: getattr(self, name) for name in CROSS_SECTIONS}))
        return self

    @property
    def state_path(self) -> str:
        """Where a local backend keeps the state, relative to the folder that holds the output folder."""
        return self.backend.path if self.backend.path is not None else f"{defaults.STATE_DIR}/{self.name}.tfstate"

    def directory_settings(self, *, bind_password: str) -> DirectorySettings:
        """The typed directory settings, with `bind_password` (a reference, or a real value for check-ad)."""
        d = self.directory
        return DirectorySettings.build(urls=d.urls, tls=d.tls, base_dn=d.base_dn, bind_dn=d.bind_dn,
                                       bind_password=SecretValue(ref=bind_password), domains=self.domains,
                                       attributes=d.attributes.attribute_map(), ca_cert_file=d.ca_cert_file)


# The top-level sections the cross-section rules read, and their types (the loader validates each alone).
CROSS_SECTIONS: dict[str, Any] = {"domains": Domains, "dns": Dns, "network": Network, "directory": Directory,
                                  "layers": Layers, "listeners": Listeners, "tls": Tls, "webmail": WebmailSettings}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `PlatformConfig` for editors (input shape; every object closed to unknown keys)."""
    schema = PlatformConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
