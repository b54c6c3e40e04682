"""Stacks: own providers, backends and environment choices."""

from mailstrata.stacks.mail_platform_stack import MailPlatformStack

__all__ = ["MailPlatformStack"]
