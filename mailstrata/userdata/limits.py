"""How big a server's user-data will be once Terraform has filled in the values it only knows at apply
time, and what Nova accepts.

Nova refuses user-data over 65,535 bytes after base64 (`MAX_USERDATA_SIZE`). The cloud-config body is
known at synth, but the references in it (`${var.ad_bind_password}`, `${base64encode(tls_private_key.
dkim.private_key_pem)}`, VIP addresses) are not. Each reference is estimated by a stand-in of the real
value's size made of random base64 characters: keys, certificates and passwords do not compress, so a
stand-in that does (such as 4096 "x") would let a user-data of 74 KB pass as 30 KB. The stand-ins are
pseudo-random from a seed that is the reference itself: the same reference gets the same stand-in
wherever it occurs (as the same value would, and gzip sees the repeats), and the estimate is the same on
every synth.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mailstrata.errors import Problem
from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons.ldap import quoted_secret
from mailstrata.userdata.terraform_text import escape

if TYPE_CHECKING:
    from mailstrata.config.model import PlatformConfig

NOVA_USER_DATA_LIMIT = 65535  # bytes after base64, Nova's MAX_USERDATA_SIZE

@dataclass(frozen=True)
class Kind:
    """What a reference stands for: its size in characters and, for a PEM file, its label."""

    length: int
    pem_label: str | None = None


# Real sizes of what a reference stands for. Each is the largest value of its kind.
RSA_2048_PEM = Kind(1679, "RSA PRIVATE KEY")  # tls_private_key RSA 2048 `private_key_pem` (PKCS#1: 1675-1679)
# provided chain: three certificates of about 2 KB (leaf, intermediate, cross-sign)
TLS_CHAIN_PEM = Kind(6144, "CERTIFICATE")
TLS_KEY_PEM = Kind(3272, "PRIVATE KEY")  # provided key: RSA 4096 in PKCS#8, the largest a TLS endpoint commonly uses
PASSWORD = Kind(128)  # a password variable (AD allows up to 256; 128 is generous for a service account)
GENERATED_PASSWORD = Kind(32)  # random_password in the stack (length 32)
OTHER = Kind(64)  # anything else: addresses (15), IDs (36), NFS export paths

_REFERENCE = re.compile(r"(?<!\$)\$\{([^{}]*)\}")  # a reference in text escaped for Terraform
_BASE64ENCODE = re.compile(r"^base64encode\((?P<inner>.*)\)$")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def kind_of(expression: str, known: Mapping[str, Kind]) -> Kind:
    """What `${expression}` stands for: `known` (by bare expression) first, then by resource type."""
    if expression in known:
        return known[expression]
    if expression.endswith(".private_key_pem"):
        return RSA_2048_PEM  # the stack's only tls_private_key is the DKIM key, RSA 2048
    if expression.startswith("random_password.") and expression.endswith(".result"):
        return GENERATED_PASSWORD
    return OTHER


def standin(expression: str, known: Mapping[str, Kind] | None = None) -> str:
    """Text of the real size and shape of `${expression}`'s value, random, the same for the same expression.

    A PEM is PEM-shaped (label lines, 64-character lines of base64) and `base64encode(x)` is the base64 of
    x's stand-in, because gzip finds less to squeeze in base64 of base64 than in random base64 characters.
    """
    m = _BASE64ENCODE.match(expression)
    if m:
        return base64.b64encode(standin(m.group("inner"), known).encode()).decode()
    kind = kind_of(expression, known or {})
    rng = random.Random(hashlib.sha256(expression.encode()).digest())
    if kind.pem_label is None:
        return "".join(rng.choice(_B64) for _ in range(kind.length))
    head, foot = f"-----BEGIN {kind.pem_label}-----\n", f"-----END {kind.pem_label}-----\n"
    n = kind.length - len(head) - len(foot)
    body_chars = n - (n + 64) // 65  # 64 characters and a newline per line, the last one shorter
    body = "".join(rng.choice(_B64) for _ in range(body_chars))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return head + "".join(line + "\n" for line in lines) + foot


def fill_in(escaped: str, known: Mapping[str, Kind] | None = None) -> str:
    """The text Terraform would produce from `escaped` (text escaped for Terraform), every reference
    replaced by its stand-in and the escapes `$${` and `%%{` undone."""
    out = []
    pos = 0
    for m in _REFERENCE.finditer(escaped):
        out.append(_unescape(escaped[pos : m.start()]))
        out.append(standin(m.group(1), known))
        pos = m.end()
    out.append(_unescape(escaped[pos:]))
    return "".join(out)


def _unescape(text: str) -> str:
    return text.replace("$${", "${").replace("%%{", "%{")


def nova_size(text: str, *, gzip_it: bool) -> int:
    """Bytes Nova counts: the user data after base64 (and gzip first, when used)."""
    data = text.encode()
    if gzip_it:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    return len(base64.b64encode(data))


def needs_gzip(text: str) -> bool:
    return nova_size(text, gzip_it=False) > NOVA_USER_DATA_LIMIT


# ---- one layer's user-data -----------------------------------------------------------------------

# The per-server head MailLayer puts before the body, at its longest (a 40-character host name); with a spool
# volume, the line that writes its ID (a UUID: 36 characters that do not compress, like the real one).
_HEAD = ("#cloud-config\nhostname: " + "h" * 40 + "\nfqdn: " + "h" * 80 +
         "\nprefer_fqdn_over_hostname: true\nmanage_etc_hosts: true\n")
_SAMPLE_VOLUME_ID = "9f1c3b7e-5a2d-4c8e-b6f0-3d7a1e9c2b54"


def _head(ctx: LayerContext) -> str:
    if ctx.spool is None:
        return _HEAD
    run_dir = ctx.spool.id_file.rsplit("/", 1)[0]
    return (_HEAD + f"bootcmd:\n  - [sh, -c, 'mkdir -p {run_dir} && echo {_SAMPLE_VOLUME_ID} > "
            f"{ctx.spool.id_file}']\n")


def secret_kinds(ctx: LayerContext) -> dict[str, Kind]:
    """What each secret variable `ctx` refers to is, by bare expression (`var.x`); generated keys and
    passwords are recognised by their resource type (`kind_of`)."""
    bind_ref = ctx.platform.directory.bind_password.ref
    kinds = {_bare(bind_ref): PASSWORD}
    # Dovecot's and SOGo's copy is escaped by Terraform (`quoted_secret`): at worst every character doubled.
    kinds[_bare(quoted_secret(bind_ref)[1:-1])] = Kind(2 * PASSWORD.length)
    if ctx.platform.webmail is not None:
        kinds[_bare(ctx.platform.webmail.database.password.ref)] = PASSWORD
    if ctx.platform.tls.certificate is not None:
        kinds[_bare(ctx.platform.tls.certificate.ref)] = TLS_CHAIN_PEM
    if ctx.platform.tls.private_key is not None:
        kinds[_bare(ctx.platform.tls.private_key.ref)] = TLS_KEY_PEM
    return {k: v for k, v in kinds.items() if not k.startswith("random_password.")}


def _bare(ref: str) -> str:
    return ref[2:-1] if ref.startswith("${") and ref.endswith("}") else ref


def estimate(body: str, ctx: LayerContext) -> tuple[int, bool]:
    """(bytes Nova will count, whether to gzip) for a layer whose cloud-config body is `body` (unescaped)."""
    text = fill_in(_head(ctx) + escape(body), secret_kinds(ctx))
    gzip_it = needs_gzip(text)
    return nova_size(text, gzip_it=gzip_it), gzip_it


def rendered_size(ctx: LayerContext, os: str) -> int:
    from mailstrata.userdata.render import render_layer

    return estimate(render_layer(ctx, os).body_text(), ctx)[0]


def with_domains(ctx: LayerContext, domains: Sequence[str]) -> LayerContext:
    """`ctx` serving only `domains` (everywhere the templates list them)."""
    ds = tuple(domains)
    return ctx.with_platform(domains=ds, directory=replace(ctx.platform.directory, domains=ds))


def most_domains_that_fit(size_of: Callable[[int], int], count: int) -> int:
    """The largest n <= count with `size_of(n)` within Nova's limit (0 when not even one domain fits).

    Once gzip is on, the size grows almost linearly with the domains: each guess interpolates between
    the largest count known to fit and the smallest known not to, so a few renders find the edge (a
    bisection step whenever interpolation stalls)."""
    limit = NOVA_USER_DATA_LIMIT
    sizes: dict[int, int] = {}

    def size(n: int) -> int:
        if n not in sizes:
            sizes[n] = size_of(n)
        return sizes[n]

    if count == 0 or size(1) > limit:
        return 0
    lo, hi = 1, count + 1  # size(lo) fits; hi is the smallest count known not to (count + 1: none known)
    if size(count) <= limit:
        return count
    hi = count
    bisect = False
    while hi - lo > 1:
        if bisect:
            mid = (lo + hi) // 2
        else:
            slope = (size(hi) - size(lo)) / (hi - lo)
            mid = lo + int((limit - size(lo)) / slope) if slope > 0 else (lo + hi) // 2
            mid = min(max(mid, lo + 1), hi - 1)
        before = hi - lo
        if size(mid) <= limit:
            lo = mid
        else:
            hi = mid
        bisect = not bisect and (hi - lo) * 2 > before  # interpolation gained less than a bisection would
    return lo


def too_big(where: str, size: int, ctx: LayerContext, os: str) -> Problem:
    """The problem for a layer whose user-data is `size` bytes, over the limit: it names `domains` and
    the count that fits when fewer domains would fit, else the layer."""
    n = len(ctx.platform.domains)
    fit = most_domains_that_fit(lambda k: rendered_size(with_domains(ctx, ctx.platform.domains[:k]), os), n)
    return _problem(where, size, n, fit)


def _problem(where: str, size: int, count: int, fit: int) -> Problem:
    if fit == 0:
        return Problem(where, f"user data would be {size} bytes after gzip and base64, over Nova's limit of "
                              f"{NOVA_USER_DATA_LIMIT} even with one mail domain; turn off optional features "
                              "of this layer (a provided TLS chain, a large directory CA)")
    return Problem("domains", f"must keep every server's user data within Nova's limit of {NOVA_USER_DATA_LIMIT} "
                              f"bytes ({where}'s would be {size} after gzip and base64), got {count} mail domains; "
                              f"at most {fit} fit with this config: serve the others from a second platform "
                              "(another config file)")


# ---- the whole config, before synth (for `mailstrata validate`) ---------------------------------------


def estimate_contexts(cfg: PlatformConfig) -> list[tuple[str, LayerContext]]:
    """(YAML path, context) of each mail layer, as `MailPlatformStack` builds them, with placeholder
    references of the same kinds where the stack has Terraform references. jsii-free and quick."""
    from mailstrata.contract import PROXY_CAPABLE
    from mailstrata.userdata.context import NfsMount
    from mailstrata.userdata.from_config import platform_context, variable_ref

    vips = {r: f"${{openstack_lb_loadbalancer_v2.{r.value}.vip_address}}" for r, _ in cfg.layers.items()}
    directory = cfg.directory_settings(bind_password=variable_ref(cfg.directory.bind_password.variable))
    base = platform_context(cfg, vips=vips, directory=directory)
    nfs = NfsMount(source="${openstack_sharedfilesystem_share_v2.mailboxes.export_locations}")
    return [
        (f"layers.{role.value}", LayerContext(platform=base, role=role, proxy_ports=PROXY_CAPABLE[role],
                                              nfs=nfs if role is Role.MAILSTORE else None))
        for role, _ in cfg.layers.items()
    ]


def user_data_problems(cfg: PlatformConfig) -> list[Problem]:
    """Every mail layer's user-data fits Nova's limit with real-sized secrets, or one problem per cause:
    `domains` with the number of mail domains that fits, or the layer that is too big even with one.

    Quick (milliseconds per render; a binary search when over), so `mailstrata validate` and synth can
    refuse before any Terraform construct is built."""
    os = cfg.os.value
    contexts = estimate_contexts(cfg)
    sizes = {where: rendered_size(ctx, os) for where, ctx in contexts}
    over = [(where, ctx) for where, ctx in contexts if sizes[where] > NOVA_USER_DATA_LIMIT]
    if not over:
        return []
    n = len(cfg.domains)

    def size_of(k: int) -> int:
        # Only the layers over the limit with every domain: one under it with all of them is under it
        # with fewer (below the limit uncompressed, or gzipped and smaller).
        return max(rendered_size(with_domains(ctx, cfg.domains[:k]), os) for _, ctx in over)

    fit = most_domains_that_fit(size_of, n)
    if fit == 0:
        return [_problem(where, sizes[where], n, 0) for where, _ in over]
    worst = max(over, key=lambda o: sizes[o[0]])[0]
    return [_problem(worst, sizes[worst], n, fit)]
