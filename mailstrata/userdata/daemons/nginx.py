"""nginx in front of SOGo: TLS on 443, port 80 only redirects, `/SOGo` and ActiveSync go to sogod.

Client addresses: the webmail pools send the PROXY protocol (v1) by default, so the construct puts 80 and 443
in `ctx.proxy_ports`. nginx then expects the PROXY line on those ports (a connection without one is closed),
and ngx_http_realip_module takes the client address from it only when the connection comes from where
Octavia's amphorae talk to members: the webmail servers' own subnet, which every pool member names
(`LayerContext.proxy_sources` through `mailstrata.octavia`, the same sources Dovecot trusts). That address
becomes `$remote_addr`, which nginx hands to sogod as `X-Real-IP`, `X-Forwarded-For` and
`x-webobjects-remote-host` (SOGo logs logins with it, and sends it to the mailstore as IMAP `ID
("x-originating-ip" ...)`, after LOGIN: Dovecot can only log it there, so its logins and auth penalties still
see the webmail server). A PROXY line from anywhere else is read and ignored: the client is the peer.
Octavia's health checks carry the PROXY line too (see `contract.DEFAULT_LISTENERS`), so `/healthz` needs no
listener of its own. Without PROXY on a port (a `pool_protocol: TCP` override) every request there seems to
come from the load balancer.

MTA-STS (RFC 8461): a second server on 443 answers `Host: mta-sts.<domain>` for every mail domain, with only
`/.well-known/mta-sts.txt`, the policy file `mta_sts_file` writes (one for all domains: they share one MX).
Port 80 keeps redirecting, since senders fetch the policy over HTTPS only and must not follow redirects.
Senders verify the certificate, so the one nginx presents must name `mta-sts.<domain>` for every domain and
chain to a public CA (`tls.source: provided`); the self-signed fallback makes every fetch fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata import contract, mta_sts
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

HTTP_PORT = contract.HTTP
HTTPS_PORT = contract.HTTPS
HEALTH_PATH = "/healthz"  # the load balancer's HTTP health monitor; answered by sogod
# Mozilla "intermediate", ECDHE only: no dhparam file to manage.
TLS_CIPHERS = ":".join(contract.ECDHE_CIPHERS)
TLS_PROTOCOLS = f"{contract.TLS_MIN_VERSION} TLSv1.3"  # every version from the floor up
# ActiveSync keeps Ping/Sync requests open; nginx must wait at least as long as SOGo may hold one
# (daemons/sogo.py: EAS_MAX_HOLD_S, a minute less) and gives up when the webmail LB's data timeouts would.
EAS_PROXY_TIMEOUT_S = contract.WEBMAIL_SESSION_MS // 1000
HSTS_MAX_AGE_S = 31536000  # one year


@dataclass(frozen=True, kw_only=True)
class NginxConf:
    user: str
    pid: str
    error_log: str
    access_log: str
    mime_types: str
    http_listen: str
    https_listen: str
    real_ip_from: tuple[str, ...]  # empty: no PROXY protocol on 80 or 443, the client address is the LB's
    certificate: str
    certificate_key: str
    ssl_protocols: str
    ssl_ciphers: str
    hsts_max_age: int
    sogo_upstream: str
    web_resources: str
    client_max_body_size: int
    eas_timeout: int
    health_path: str
    mta_sts_listen: str
    mta_sts_server_names: str  # mta-sts.<domain> for every mail domain, space-separated
    mta_sts_path: str
    mta_sts_policy: str  # the policy file on disk



def nginx_conf(ctx: LayerContext, os: OsProfile, *, sogo_listen: str) -> NginxConf:
    """nginx's settings for SOGo listening on `sogo_listen` (host:port) on this server."""
    proxy = ctx.proxy_ports

    def listen(port: int, *flags: str) -> str:
        return " ".join((str(port), *flags, *(("proxy_protocol",) if port in proxy else ())))

    return NginxConf(
        user=os.users.nginx,
        pid=os.paths.nginx_pid,
        error_log=f"{os.paths.nginx_log_dir}/error.log",
        access_log=f"{os.paths.nginx_log_dir}/access.log",
        mime_types=os.paths.nginx_mime_types,
        http_listen=listen(HTTP_PORT, "default_server"),
        https_listen=listen(HTTPS_PORT, "ssl", "http2", "default_server"),
        real_ip_from=ctx.proxy_sources() if proxy & {HTTP_PORT, HTTPS_PORT} else (),
        certificate=f"{os.paths.tls_dir}/server.crt",
        certificate_key=f"{os.paths.tls_dir}/server.key",
        ssl_protocols=TLS_PROTOCOLS,
        ssl_ciphers=TLS_CIPHERS,
        hsts_max_age=HSTS_MAX_AGE_S,
        sogo_upstream=f"http://{sogo_listen}",
        web_resources=os.paths.sogo_web_resources,
        # A message with attachments may be as large as Postfix's message_size_limit, no larger.
        client_max_body_size=ctx.platform.limits.message_size_limit,
        eas_timeout=EAS_PROXY_TIMEOUT_S,
        health_path=HEALTH_PATH,
        # The same socket as the webmail's 443 (so the same flags), picked by the Host header.
        mta_sts_listen=listen(HTTPS_PORT, "ssl", "http2"),
        mta_sts_server_names=" ".join(mta_sts.policy_host(d) for d in ctx.platform.domains),
        mta_sts_path=mta_sts.POLICY_PATH,
        mta_sts_policy=os.paths.mta_sts_policy,
    )


def conf_file(ctx: LayerContext, os: OsProfile, *, sogo_listen: str) -> FileSpec:
    return FileSpec(
        dest=os.paths.nginx_conf,
        template="nginx/etc/nginx/nginx.conf.j2",
        context={"nginx": nginx_conf(ctx, os, sogo_listen=sogo_listen)},
    )


def mta_sts_file(ctx: LayerContext, os: OsProfile) -> FileSpec:
    """The MTA-STS policy (RFC 8461 3.2) nginx serves for every mail domain; its `policy_id` is what each
    domain's `_mta-sts` TXT record carries, so the record and the file always describe the same policy.

    No banner: the policy format has no comments (a `#` line is not a field in 3.2's ABNF)."""
    return FileSpec(
        dest=os.paths.mta_sts_policy,
        template="nginx/etc/nginx/mta-sts.txt.j2",
        context={"policy": ctx.platform.mta_sts.policy(ctx.platform.dns_zone)},
    )
