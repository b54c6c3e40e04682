"""Cloud-init user-data for every role: OS profiles, typed contexts, templates, one entry point."""

from mailstrata.userdata.render import LayerUserData, render_layer

__all__ = ["LayerUserData", "render_layer"]
