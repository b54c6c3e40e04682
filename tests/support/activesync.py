"""ActiveSync bodies for tests: WBXML ([MS-ASWBXML]) written and read by hand, only as far as the tests need.

WBXML 1.3 tokens over per-namespace code pages; spelled out are code page 7 (FolderHierarchy) and 13 (Ping),
with the tokens [MS-ASWBXML] 2.1.2.1.8 and 2.1.2.1.14 list. The encodings were checked against libwbxml (the
library SOGo decodes requests with): `wbxml2xml -l ACTIVESYNC` reads `folder_sync_request()` and
`ping_request()` back as the XML of [MS-ASCMD].
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROTOCOL = "14.1"  # Exchange 2010 SP1, which SOGo 5 offers (MS-ASProtocolVersions)
CONTENT_TYPE = "application/vnd.ms-sync.wbxml"

# ---- WBXML (WBXML 1.3, section 5; [MS-ASWBXML] 2.1.2.1) ----------------------------------------------------
SWITCH_PAGE, END, ENTITY, STR_I, STR_T, OPAQUE = 0x00, 0x01, 0x02, 0x03, 0x83, 0xC3
HAS_CONTENT, HAS_ATTRIBUTES = 0x40, 0x80
# version 1.3, public id 1 (unknown), charset 106 (UTF-8), empty string table
HEADER = bytes([0x03, 0x01, 0x6A, 0x00])
FOLDER_HIERARCHY, PING = 7, 13
TOKENS: dict[int, dict[int, str]] = {
    FOLDER_HIERARCHY: {
        0x07: "DisplayName", 0x08: "ServerId", 0x09: "ParentId", 0x0A: "Type", 0x0C: "Status", 0x0E: "Changes",
        0x0F: "Add", 0x10: "Delete", 0x11: "Update", 0x12: "SyncKey", 0x16: "FolderSync", 0x17: "Count",
    },
    PING: {
        0x05: "Ping", 0x07: "Status", 0x08: "HeartbeatInterval", 0x09: "Folders", 0x0A: "Folder", 0x0B: "Id",
        0x0C: "Class", 0x0D: "MaxFolders",
    },
}  # fmt: skip
# [MS-ASCMD] 2.2.3.186.3 (FolderSync Type): the default folders' types
INBOX, DRAFTS, DELETED_ITEMS, SENT_ITEMS = "2", "3", "4", "5"


def tag(page: int, name: str) -> int:
    return next(t for t, n in TOKENS[page].items() if n == name)


def element(page: int, name: str, *content: bytes | str) -> bytes:
    """One element of `page`: its token (with the content bit), then each child or inline string, then END."""
    out = bytearray([tag(page, name) | HAS_CONTENT])
    for part in content:
        out += bytes([STR_I]) + part.encode() + b"\0" if isinstance(part, str) else part
    return bytes(out + bytes([END]))


def document(page: int, root: bytes) -> bytes:
    return HEADER + bytes([SWITCH_PAGE, page]) + root


@dataclass
class Element:
    name: str
    text: str | None = None
    children: list[Element] = field(default_factory=list)

    def find(self, name: str) -> Element | None:
        return next(iter(self.all(name)), None)

    def all(self, name: str) -> list[Element]:
        """Every descendant called `name`, in document order."""
        out: list[Element] = []
        for ch in self.children:
            out += ([ch] if ch.name == name else []) + ch.all(name)
        return out

    def value(self, name: str) -> str | None:
        el = self.find(name)
        return None if el is None else el.text


def decode(data: bytes) -> Element:
    """The element tree of a WBXML document (tags of unknown code pages or tokens are named `page:token`)."""
    pos = 0

    def mb_uint() -> int:  # multi-byte unsigned integer: 7 bits a byte, high bit set on all but the last
        nonlocal pos
        value = 0
        while True:
            b = data[pos]
            pos += 1
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value

    def cstring(at: int) -> str:
        end = data.index(0, at)
        return data[at:end].decode()

    pos = 1  # version
    if mb_uint() == 0:  # public id 0: the id is a string in the string table, at this index
        mb_uint()
    mb_uint()  # charset
    table_len = mb_uint()
    table, pos = pos, pos + table_len
    page = 0
    doc = Element("#document")
    stack = [doc]
    while pos < len(data):
        t = data[pos]
        pos += 1
        if t == SWITCH_PAGE:
            page = data[pos]
            pos += 1
        elif t == END:
            stack.pop()
        elif t == STR_I:
            stack[-1].text = (stack[-1].text or "") + cstring(pos)
            pos = data.index(0, pos) + 1
        elif t == STR_T:
            stack[-1].text = (stack[-1].text or "") + cstring(table + mb_uint())
        elif t == OPAQUE:
            n = mb_uint()
            stack[-1].text = (stack[-1].text or "") + data[pos:pos + n].decode(errors="replace")
            pos += n
        elif t == ENTITY:
            stack[-1].text = (stack[-1].text or "") + chr(mb_uint())
        else:
            if t & HAS_ATTRIBUTES:
                raise ValueError(f"WBXML attributes are not used by ActiveSync, got token {t:#04x} at {pos - 1}")
            el = Element(TOKENS.get(page, {}).get(t & 0x3F, f"{page}:{t & 0x3F:#04x}"))
            stack[-1].children.append(el)
            if t & HAS_CONTENT:
                stack.append(el)
    [root] = doc.children
    return root


def folder_sync_request(sync_key: str = "0") -> bytes:
    """FolderSync ([MS-ASCMD] 2.2.1.5); SyncKey 0 asks for the whole folder hierarchy."""
    return document(FOLDER_HIERARCHY, element(FOLDER_HIERARCHY, "FolderSync",
                                              element(FOLDER_HIERARCHY, "SyncKey", sync_key)))


def ping_request(heartbeat_s: int, folder_id: str, folder_class: str = "Email") -> bytes:
    """Ping ([MS-ASCMD] 2.2.1.13): hold for `heartbeat_s` unless the folder changes."""
    folder = element(PING, "Folder", element(PING, "Id", folder_id), element(PING, "Class", folder_class))
    return document(PING, element(PING, "Ping", element(PING, "HeartbeatInterval", str(heartbeat_s)),
                                  element(PING, "Folders", folder)))


def folders_by_type(tree: Element) -> dict[str, list[tuple[str, str]]]:
    """{folder type: [(display name, server id)]} of a FolderSync answer's added folders."""
    out: dict[str, list[tuple[str, str]]] = {}
    for add in tree.all("Add"):
        name, server_id = add.value("DisplayName") or "", add.value("ServerId") or ""
        out.setdefault(add.value("Type") or "", []).append((name, server_id))
    return out
