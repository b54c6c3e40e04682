"""One room per daemon: each module owns one daemon's typed settings, its templates (under
`templates/<daemon>/`, named by destination path) and its OS differences.

Role modules (`mailstrata.userdata.roles`) only compose these: which daemons a role runs, and the role's
differences as data (restriction lists, milters, listeners, maps).
"""
