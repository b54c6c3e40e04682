"""The stack the twin runs: synthesized from the config exactly as `mailstrata synth` does, then read back.

`synthesize()` builds `MailPlatformStack` from the config (the embedded default unless told otherwise),
with at least two servers in smtp_in and mailstore so that load balancing is real, synthesizes it into
the twin's folder and returns the construct tree (each layer's `context` and `servers`) together with
`cdk.tf.json`. `twin_values` then gives every resource attribute and variable the stack refers to a twin
value (VIPs and ports in 127.0.0.0/8, the Samba bind password, DKIM keys and the database password made
once by the twin) and has Terraform itself evaluate the stack's expressions with them, in one run.
"""

from __future__ import annotations

import json
import secrets
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailstrata.config import load_config
from mailstrata.config.model import PlatformConfig
from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.terraform_eval import StandIns
from mailstrata.twin.addresses import AddressPlan
from mailstrata.twin.terraform import Values, evaluate_stack, keys_by_name, resources

MIN_SERVERS: Mapping[Role, int] = {Role.SMTP_IN: 2, Role.MAILSTORE: 2}  # load balancing must be real


@dataclass(frozen=True, kw_only=True)
class TwinServer:
    """One server of one layer, as the twin runs it."""

    role: Role
    index: int
    name: str  # mail-smtp-in-01, the Nova name and host name
    fqdn: str
    address: str  # its twin address
    root: Path  # every path of its OS profile is moved under here

    @property
    def slug(self) -> str:
        return self.name


def twin_config(path: str | None) -> PlatformConfig:
    """The config the twin runs: `path` (default: the embedded one) with smtp_in and mailstore counts >= 2."""
    cfg = load_config(path)
    layers = cfg.layers
    changes: dict[str, Any] = {}
    for role, minimum in MIN_SERVERS.items():
        layer = getattr(layers, role.value)
        if layer is not None and layer.count < minimum:
            changes[role.value] = layer.model_copy(update={"count": minimum})
    if changes:
        cfg = cfg.model_copy(update={"layers": layers.model_copy(update=changes)})
    return cfg


@dataclass
class Synthesized:
    """The construct tree and its Terraform JSON (held while the twin renders; jsii objects inside)."""

    config: PlatformConfig
    stack: Any  # MailPlatformStack
    doc: dict[str, Any]
    outdir: Path

    def resolve(self, text: str) -> str:
        """`text` with every cdktf token replaced by the Terraform expression it stands for."""
        if "${TfToken[" not in text:
            return text
        from cdktf import DefaultTokenResolver, StringConcat, Tokenization

        return str(Tokenization.resolve(text, scope=self.stack, resolver=DefaultTokenResolver(StringConcat())))


def synthesize(cfg: PlatformConfig, outdir: Path) -> Synthesized:
    from cdktf import App

    import mailstrata.app  # noqa: F401  (silences jsii's Node.js banner before cdktf loads)
    from mailstrata.stacks import MailPlatformStack

    outdir.mkdir(parents=True, exist_ok=True)
    app = App(outdir=str(outdir), skip_validation=False)
    stack = MailPlatformStack(app, cfg.name, config=cfg)
    app.synth()
    doc = json.loads((outdir / "stacks" / cfg.name / "cdk.tf.json").read_text())
    return Synthesized(config=cfg, stack=stack, doc=doc, outdir=outdir)


def address_plan(cfg: PlatformConfig) -> AddressPlan:
    net = cfg.network
    # the network's own subnet holds the NFS server (Cinder mode) and every layer without a subnet of its own
    return AddressPlan.build(
        server_cidrs={Role.NFS_SERVER: net.subnet_cidr}
        | {r: (lc.subnet_cidr or net.subnet_cidr) for r, lc in cfg.layers.items()},
        vip_cidr=net.vip_subnet_cidr,
        client_cidrs=net.client_cidrs,
        admin_cidrs=net.admin_cidrs,
    )


def subnet_cidrs(cfg: PlatformConfig) -> dict[str, str]:
    """Each subnet ID the config names -> its CIDR (the network's, the VIP subnet's and each layer's own)."""
    net = cfg.network
    out = {net.subnet_id: net.subnet_cidr, net.vip_subnet_id: net.vip_subnet_cidr}
    for _, lc in cfg.layers.items():
        if lc.subnet_id and lc.subnet_cidr:
            out[lc.subnet_id] = lc.subnet_cidr
    return out


def servers(syn: Synthesized, plan: AddressPlan, root: Path) -> tuple[TwinServer, ...]:
    out = []
    for role in MAIL_LAYER_ROLES:
        layer = syn.stack.layers.get(role)
        if layer is None:
            continue
        for i, s in enumerate(layer.servers, start=1):
            out.append(TwinServer(role=role, index=i, name=s.name, fqdn=s.fqdn, address=plan.server(role, i),
                                  root=root / "servers" / s.name))
    return tuple(out)


# ---- Terraform's part: values known only after apply -------------------------------------------------


def _keypair(path: Path, bits: int) -> tuple[str, str]:
    """An RSA key made once and kept (DKIM must stay the same across `twin up`s); (private, public) PEM."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                        "-out", str(path)], check=True, capture_output=True)
        path.chmod(0o600)
    pub = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout"], check=True, capture_output=True,
                         text=True).stdout
    return path.read_text(), pub


def _password(path: Path, length: int) -> str:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        alphabet = string.ascii_letters + string.digits
        path.write_text("".join(secrets.choice(alphabet) for _ in range(length)))
        path.chmod(0o600)
    return path.read_text()


def twin_standins(syn: Synthesized, plan: AddressPlan, twin_servers: tuple[TwinServer, ...], *, secrets_dir: Path,
                   bind_password: str, nfs_server: str) -> StandIns:
    """The twin's value of every resource attribute and variable the stack can refer to."""
    doc = syn.doc
    attrs: dict[str, Any] = {}
    lb_role = {vip.props.name: role for role, vip in syn.stack.vips.items()}
    lb_key = keys_by_name(doc, "openstack_lb_loadbalancer_v2")
    for name, key in lb_key.items():
        vip = plan.vip(lb_role[name])
        attrs[f"openstack_lb_loadbalancer_v2.{key}.vip_address"] = vip
        attrs[f"openstack_lb_loadbalancer_v2.{key}.vip_port_id"] = f"twin-vip-port-{key}"
    for key, fip in resources(doc, "openstack_networking_floatingip_v2").items():
        # A floating IP NATs to its VIP: in the twin, "the Internet" reaches the VIP address itself.
        port = str(fip.get("port_id", ""))
        lb = next((k for k in lb_key.values() if f"openstack_lb_loadbalancer_v2.{k}.vip_port_id" in port), None)
        if lb is not None:
            attrs[f"openstack_networking_floatingip_v2.{key}.address"] = attrs[
                f"openstack_lb_loadbalancer_v2.{lb}.vip_address"]
    by_name = {s.name: s for s in twin_servers}
    for key, port_res in resources(doc, "openstack_networking_port_v2").items():
        server = by_name.get(str(port_res.get("name")))
        attrs[f"openstack_networking_port_v2.{key}.all_fixed_ips"] = [server.address if server else nfs_server]
    # The NFS server's own disk (Cinder mode) and a Manila share's export: the twin's shared folder stands
    # in for both, so only their identifiers are needed.
    for key in resources(doc, "openstack_blockstorage_volume_v3"):
        attrs[f"openstack_blockstorage_volume_v3.{key}.id"] = f"twin-volume-{key}"
    for key in resources(doc, "openstack_sharedfilesystem_share_v2"):
        attrs[f"openstack_sharedfilesystem_share_v2.{key}.export_locations"] = [{"path": f"{nfs_server}:/twin"}]
    # smtp-out's egress look-up (`MailPlatformStack._egress`): in the twin, the first smtp-out server's address.
    smtp_out = [s.address for s in twin_servers if s.role is Role.SMTP_OUT]
    for key in doc.get("data", {}).get("openstack_networking_router_v2", {}):
        attrs[f"data.openstack_networking_router_v2.{key}.external_fixed_ip"] = [
            {"ip_address": smtp_out[0], "subnet_id": "twin"}]
    bind_var = syn.config.directory.bind_password.variable
    variables = {
        # the bind password is Samba's; every other secret variable (e.g. the external database's
        # password) gets a password the twin makes once, as an operator would
        name: bind_password if name == bind_var else _password(secrets_dir / f"var.{name}", 32)
        for name, spec in doc.get("variable", {}).items()
        if "default" not in spec  # e.g. mailstrata_drain: empty, as at a plain deploy
    }
    for key, res in resources(doc, "tls_private_key").items():
        pem, pub = _keypair(secrets_dir / f"{key}.pem", int(res.get("rsa_bits", 2048)))
        attrs[f"tls_private_key.{key}.private_key_pem"] = pem
        attrs[f"tls_private_key.{key}.public_key_pem"] = pub
    for key, res in resources(doc, "random_password").items():
        attrs[f"random_password.{key}.result"] = _password(secrets_dir / f"{key}.password", int(res.get("length", 32)))
    return StandIns(attributes=attrs, variables=variables)


def twin_values(syn: Synthesized, plan: AddressPlan, twin_servers: tuple[TwinServer, ...], *, secrets_dir: Path,
                bind_password: str, nfs_server: str) -> Values:
    """The stack's references and DNS records as Terraform computes them from the twin's stand-ins (one run)."""
    standins = twin_standins(syn, plan, twin_servers, secrets_dir=secrets_dir, bind_password=bind_password,
                             nfs_server=nfs_server)
    outputs = [name for name in ("dns_records",) if name in syn.doc.get("output", {})]
    return evaluate_stack(syn.doc, standins, outputs=outputs, workdir=syn.outdir.parent / "terraform")
