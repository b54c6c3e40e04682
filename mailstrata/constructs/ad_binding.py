"""`AdBinding`: the directory every layer authenticates against, as one typed settings object."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack, TerraformVariable, TerraformVariableValidationConfig
from constructs import Construct

from mailstrata import defaults as D
from mailstrata.constructs import _validate as v
from mailstrata.constructs._names import names_of
from mailstrata.constructs._validate import check_props, unique_id
from mailstrata.constructs._variables import is_declared
from mailstrata.directory import AttributeMap, DirectorySettings, LdapTls
from mailstrata.errors import Problems
from mailstrata.types import Secret

# The one rule the bind password must follow (the variable's validation; Terraform prints it as it is).
BIND_PASSWORD_RULE = (
    "The AD bind password must be non-empty, on one line, and must not start or end with a space or tab "
    "(Postfix and saslauthd drop them)."
)


@dataclass(frozen=True, kw_only=True)
class AdBindingProps:
    """An existing Active Directory (or LDAP / Samba 4 AD).

    The bind password is never a prop: it is the sensitive Terraform variable `password_variable`
    (default `ad_bind_password`, set with TF_VAR_ad_bind_password). Default TLS: LDAPS.
    """

    urls: tuple[str, ...]
    base_dn: str
    bind_dn: str
    domains: tuple[str, ...]
    tls: LdapTls = D.DIRECTORY_TLS
    ca_cert_pem: str | None = None
    attributes: AttributeMap = D.AD_ATTRIBUTES  # frozen: one shared instance is safe
    password_variable: str = D.BIND_PASSWORD_VARIABLE


def validate(props: AdBindingProps, path: str = "directory") -> Problems:
    p = Problems()
    if not props.urls:
        p.add(f"{path}.urls", "must list at least one LDAP URL")
    for i, url in enumerate(props.urls):
        scheme = url.split("://", 1)[0]
        if scheme not in ("ldap", "ldaps"):
            p.add(f"{path}.urls[{i}]", f"must start with ldap:// or ldaps://, got {url!r}")
        elif (scheme == "ldaps") != (props.tls is LdapTls.LDAPS):
            p.add(
                f"{path}.urls[{i}]", f"{url!r} does not match tls {props.tls.value}; use ldaps:// only with tls ldaps"
            )
    if not props.domains:
        p.add(f"{path}.domains", "must list at least one mail domain")
    for name in ("base_dn", "bind_dn"):
        value = getattr(props, name)
        if not v.is_token(value) and "=" not in value:
            p.add(f"{path}.{name}", f"must be an LDAP DN such as dc=domain01,dc=dom, got {value!r}")
    v.variable_name(p, "props.password_variable", props.password_variable)
    return p


class AdBinding(Construct):
    """Declares the sensitive bind-password variable and exposes `settings` for every layer's templates."""

    def __init__(self, scope: Construct, id: str, *, props: AdBindingProps) -> None:
        check_props(unique_id(Problems(), scope, id), props, AdBindingProps).raise_if_any()  # `v`: a local below
        p = validate(props)
        stack = TerraformStack.of(scope)
        if is_declared(stack, props.password_variable):
            p.add("props.password_variable", f"is already declared in this stack, got {props.password_variable!r}; "
                                             "give each secret its own variable, and build the AdBinding before the "
                                             "layers that reference it")
        p.raise_if_any()
        super().__init__(scope, id)
        self.props = props
        v = props.password_variable
        self.password = TerraformVariable(
            self,
            "bind-password",
            type="string",
            sensitive=True,
            nullable=False,
            description=f"Password of {props.bind_dn} (read-only bind account). Set TF_VAR_{props.password_variable}.",
            validation=[
                TerraformVariableValidationConfig(
                    # The password reaches four file formats, each verified with the real daemon against a
                    # real AD (tests/userdata/daemons/test_directory_connection.py): Dovecot's dnpass and
                    # sogo.conf's bindPassword are quoted with backslash escapes (`quoted_secret`), so any
                    # character works there; Postfix's bind_pw and saslauthd's ldap_password are the rest
                    # of the line, verbatim. What no format can carry: a line break (it ends the value),
                    # and whitespace at either end (Postfix strips both ends, saslauthd the start).
                    # In Terraform's JSON syntax a condition is a string template: the expression must be
                    # inside ${...}, or Terraform rejects the file at `terraform init`.
                    condition="${"
                    + f"length(var.{v}) > 0 && "
                    + r'!can(regex("[\\r\\n]", var.' + f"{v})) && "
                    + r'!can(regex("^[ \\t\\v\\f]|[ \\t\\v\\f]$", var.' + f"{v}))"
                    + "}",
                    error_message=BIND_PASSWORD_RULE,
                )
            ],
        )
        self.password.override_logical_id(props.password_variable)
        names_of(stack).claim("var", "bind-password", logical=props.password_variable, under=self.node.path)
        self.settings = DirectorySettings(
            urls=props.urls,
            tls=props.tls,
            base_dn=props.base_dn,
            bind_dn=props.bind_dn,
            bind_password=Secret(ref="${var." + props.password_variable + "}"),
            domains=props.domains,
            attributes=props.attributes,
            ca_cert_pem=props.ca_cert_pem,
        )
