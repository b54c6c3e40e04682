"""Each default lives in one place (`mailstrata.defaults`): the config model, the construct props and the
templates' context state the same values, read from there."""

from __future__ import annotations

from mailstrata import defaults
from mailstrata.config.model import Quota, Spam
from mailstrata.userdata.context import QuotaPolicy, SpamPolicy, Tls, Webmail


def test_given_the_default_dnsbls_when_listed_then_sorbs_is_not_among_them() -> None:
    # SORBS shut down in 2024: listing it would add a dead lookup to every connection.
    assert [z for z in defaults.DNSBLS if "sorbs" in z.lower()] == []


def test_given_no_config_when_the_spam_policy_is_built_then_it_has_the_configs_defaults() -> None:
    spam, policy = Spam(), SpamPolicy()
    assert (policy.dnsbls, policy.tag2_level, policy.kill_level, policy.dsn_cutoff_level, policy.amavis_processes) == (
        tuple(spam.dnsbls), spam.tag2_level, spam.kill_level, spam.dsn_cutoff_level, spam.amavis_processes)


def test_given_no_config_when_the_quota_policy_is_built_then_it_has_the_configs_defaults() -> None:
    quota, policy = Quota(), QuotaPolicy()
    assert (policy.default_storage, policy.default_messages, policy.trash_extra, policy.over_quota) == (
        quota.default_storage, quota.default_messages, quota.trash_extra, quota.over_quota)


def test_given_no_certificate_when_tls_is_built_then_it_is_self_signed_as_the_config_says() -> None:
    assert Tls().source is defaults.TLS_SOURCE


def test_given_the_webmail_context_when_built_without_settings_then_sogo_gets_the_configs_defaults() -> None:
    w = Webmail.__dataclass_fields__
    assert (w["timezone"].default, w["prefork"].default, w["vmem_limit_mb"].default) == (
        defaults.WEBMAIL_TIMEZONE, defaults.SOGO_PREFORK, defaults.SOGO_VMEM_LIMIT_MB)


def test_given_the_construct_props_when_left_unset_then_they_have_the_platforms_defaults() -> None:
    from mailstrata.constructs.ad_binding import AdBindingProps
    from mailstrata.constructs.mail_layer import MailLayerProps
    from mailstrata.constructs.nfs_share import CinderServerProps, NfsShareProps

    def default(cls: type, name: str) -> object:
        return cls.__dataclass_fields__[name].default  # type: ignore[attr-defined]

    assert [default(MailLayerProps, n) for n in ("count", "flavor", "image", "affinity", "os")] == [
        defaults.LAYER_COUNT, defaults.FLAVOR, defaults.IMAGE, defaults.AFFINITY, defaults.OS]
    assert [default(CinderServerProps, n) for n in ("flavor", "image", "os")] == [
        defaults.FLAVOR, defaults.IMAGE, defaults.OS]
    assert [default(NfsShareProps, n) for n in ("size_gb", "mount_point")] == [
        defaults.STORAGE_SIZE_GB, defaults.MAILBOX_MOUNT_POINT]
    assert [default(AdBindingProps, n) for n in ("tls", "attributes", "password_variable")] == [
        defaults.DIRECTORY_TLS, defaults.AD_ATTRIBUTES, defaults.BIND_PASSWORD_VARIABLE]
