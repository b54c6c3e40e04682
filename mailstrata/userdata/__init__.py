"""Cloud-init user-data for every role: one room per daemon (`daemons/`), roles composing them (`roles/`),
OS profiles, typed contexts, templates, one entry point (`render_layer`)."""

from mailstrata.userdata.render import LayerUserData, render_layer

__all__ = ["LayerUserData", "render_layer"]
