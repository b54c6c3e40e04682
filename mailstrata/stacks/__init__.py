"""Stacks: own providers, backends and environment choices."""

from __future__ import annotations

from mailstrata.stacks.mail_platform_stack import MailPlatformStack

__all__ = ["MailPlatformStack"]
