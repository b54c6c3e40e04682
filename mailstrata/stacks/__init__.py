"""Stacks: own providers, backends and environment choices.

`MailPlatformStack` is imported on first use, so that `mailstrata.stacks.defaults` (used by config
validation) loads without the jsii runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailstrata.stacks.mail_platform_stack import MailPlatformStack

__all__ = ["MailPlatformStack"]


def __getattr__(name: str) -> Any:
    if name == "MailPlatformStack":
        from mailstrata.stacks.mail_platform_stack import MailPlatformStack

        return MailPlatformStack
    raise AttributeError(name)
