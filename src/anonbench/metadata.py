"""Lossless metadata stripping for images that are copied unchanged (JPEG and PNG only).

The copy keeps the compressed pixel data byte for byte, so it decodes to exactly the original
pixels, and drops every segment or chunk that can carry information about the photo, the camera
or its owner: EXIF (GPS included), XMP, IPTC, comments, thumbnails, text and time chunks, and
anything unknown.  Only colour information that changes how pixels are shown survives; an ICC
profile survives only when its description names a standard colour space, and then only its
colour tags (:func:`_icc_colour_only`), because the profile's text tags are free text (editors
and cameras write e.g. the device owner's name there).  A
non-trivial EXIF orientation is re-emitted as the only tag so the image still shows upright
(the annotations are made on the upright image, see ``images.read_image``).
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

from PIL import ExifTags, Image

from .manifest import atomic_path

try:
    from PIL import ImageCms
except ImportError:  # Pillow without littlecms: no profile can be judged, so none is kept
    ImageCms = None

#: ICC profile descriptions (compared case-insensitively, whitespace collapsed) that are kept.
STANDARD_ICC_DESCRIPTIONS = (
    "sRGB", "sRGB IEC61966-2.1", "sRGB IEC61966-2-1 black scaled", "sRGB built-in",
    "Adobe RGB (1998)", "Display P3", "ProPhoto RGB", "ROMM RGB", "Generic RGB Profile",
    "ITU-R BT.2020", "Rec. 2020", "Rec2020", "ITU-R BT.709", "Rec. 709",
    "Generic Gray Profile", "Generic Gray Gamma 2.2 Profile", "Gray Gamma 2.2", "sGray",
    "Dot Gain 10%", "Dot Gain 15%", "Dot Gain 20%", "Dot Gain 25%", "Dot Gain 30%",
    "U.S. Web Coated (SWOP) v2", "Coated FOGRA39 (ISO 12647-2:2004)",
)
ORIENTATION = 0x0112
_GPS_IFD = 0x8825
_XMP_APP1 = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')  # as recent Pillow reads it
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ICC tags kept in a standard profile: what a colour transform reads (colorants, tone curves,
#: white and black points, adaptation, lookup tables, cicp), all binary. Dropped: cprt, dmnd,
#: dmdd, vued, pseq, clrt, ncl2 (text), meas, view, tech, private tags.
ICC_COLOUR_TAGS = frozenset(
    {b"wtpt", b"bkpt", b"chad", b"chrm", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC",
     b"kTRC", b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2", b"D2B0", b"D2B1", b"D2B2",
     b"D2B3", b"B2D0", b"B2D1", b"B2D2", b"B2D3", b"gamt", b"lumi", b"cicp", b"arts"})
#: PNG chunks that only describe how to decode or display the pixels (no free text).
PNG_KEPT_CHUNKS = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD",
     b"pHYs"})
#: The kept chunks' lengths by the PNG specification (tRNS and bKGD by colour type, below): a
#: longer chunk carries bytes no decoder reads, which could hold anything.
_PNG_CHUNK_LENGTHS = {b"IEND": {0}, b"gAMA": {4}, b"cHRM": {32}, b"sRGB": {1},
                      b"pHYs": {9}, b"sBIT": {1, 2, 3, 4}}
_ICCP_NAMES = (b"ICC Profile", b"ICC profile", b"icc", b"Photoshop ICC profile")
#: JPEG markers kept as they are: SOFn, DHT, DAC, DQT, SOS, DNL, DRI, DHP, EXP, RSTn, TEM.
_JPEG_KEPT = frozenset({*range(0xC0, 0xC8), *range(0xC9, 0xD0), *range(0xD0, 0xD8), 0x01,
                        0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF})
_Labels = list[str]


class MetadataError(ValueError):
    """An image cannot be stripped (other format, malformed); the message starts with its path."""


def _format_name(data: bytes) -> str:
    for magic, fmt in ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                       (b"\x00\x00\x00\x0cjP", "JPEG 2000"), (b"\xff\x0a", "JPEG XL")):
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return "HEIF/AVIF" if data[4:8] == b"ftyp" else "unrecognised"


def _standard_icc_name(icc: bytes) -> str | None:
    """The entry of STANDARD_ICC_DESCRIPTIONS that littlecms reads as the description of
    ``icc``, or None (unreadable, or another description)."""
    if ImageCms is None:
        return None
    try:
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (OSError, ValueError, ImageCms.PyCMSError):  # unreadable: treat as non-standard
        return None
    return next((s for s in STANDARD_ICC_DESCRIPTIONS if _norm(s) == _norm(desc)), None)


def _icc_description_tag(name: str, version: int) -> bytes:
    """A fresh 'desc' tag holding ``name`` only: textDescriptionType (ICC v2) or mluc (v4)."""
    if version >= 4:
        text = name.encode("utf-16-be")
        return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(text),
                                                28) + text
    ascii_ = name.encode("ascii") + b"\x00"
    return (b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(8)  # Unicode: 0
            + bytes(3) + bytes(67))  # ScriptCode: code 0, count 0, 67 bytes


def _icc_colour_only(icc: bytes, name: str) -> bytes | None:
    """``icc`` rebuilt with the tags that decide how pixels are shown only, and a fresh
    description ``name``: a standard description does not make the rest of a profile standard
    (its copyright, device and private tags, the description's other languages, the bytes
    between tags and the header's reserved bytes can carry any text). None when malformed."""
    if len(icc) < 132:
        return None
    n = int.from_bytes(icc[128:132], "big")
    if 132 + 12 * n > len(icc):
        return None
    blobs, table, placed = bytearray(), [], {}
    start = 132 + 12 * (sum(1 for i in range(n) if icc[132 + 12 * i:136 + 12 * i]
                            in ICC_COLOUR_TAGS) + 1)
    for i in [-1, *range(n)]:  # -1: the description
        if i < 0:
            sig, data = b"desc", _icc_description_tag(name, icc[8])
        else:
            sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            if sig not in ICC_COLOUR_TAGS:
                continue
            if off + size > len(icc):
                return None
            data = _icc_tag_exact(icc[off:off + size])
            if data is None:  # a colour tag of another type, or shorter than its type says
                return None
        if data not in placed:  # tags sharing their data (rTRC = gTRC = bTRC) still do
            blobs += bytes(-len(blobs) % 4)
            placed[data] = start + len(blobs)
            blobs += data
        table.append(struct.pack(">4sII", sig, placed[data], len(data)))
    header = bytearray(icc[:128])
    header[84:128] = bytes(44)  # profile ID (MD5; 0 = not computed) and reserved bytes
    # the date, platform, flags, device maker and model, attributes and creator: free bytes
    # that no colour transform reads
    for a, b in ((24, 36), (40, 64), (80, 84)):
        header[a:b] = bytes(b - a)
    out = header + struct.pack(">I", len(table)) + b"".join(table) + blobs
    out[0:4] = len(out).to_bytes(4, "big")
    return bytes(out)


_PARA_PARAMETERS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def _icc_tag_exact(data: bytes) -> bytes | None:
    """A colour tag cut to the length its type gives (the tag table's size may reach over any
    bytes after it), or None for a type a colour tag does not have or data too short. The
    multi-process element types (mAB, mBA, mpet) are kept as they are."""
    t, m = data[:4], len(data)
    if t == b"XYZ ":
        n = 20
    elif t == b"curv" and m >= 12:
        n = 12 + 2 * int.from_bytes(data[8:12], "big")
    elif t == b"para" and m >= 12 and int.from_bytes(data[8:10], "big") in _PARA_PARAMETERS:
        n = 12 + 4 * _PARA_PARAMETERS[int.from_bytes(data[8:10], "big")]
    elif t == b"sf32":
        n = 44  # chad, arts: a 3 x 3 matrix
    elif t == b"chrm" and m >= 12:
        n = 12 + 8 * int.from_bytes(data[8:10], "big")
    elif t == b"cicp":
        n = 12
    elif t == b"mft1" and m >= 48:
        i, o, g = data[8], data[9], data[10]
        n = 48 + 256 * i + g ** i * o + 256 * o
    elif t == b"mft2" and m >= 52:
        i, o, g = data[8], data[9], data[10]
        n = 52 + 2 * (int.from_bytes(data[48:50], "big") * i + g ** i * o
                      + int.from_bytes(data[50:52], "big") * o)
    elif t in (b"mAB ", b"mBA ", b"mpet"):
        n = m
    else:
        return None
    return data[:n] if n <= m else None


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _exif_info(tiff_or_app1: bytes) -> tuple[object, _Labels]:
    """(Orientation tag value or None, labels) of an EXIF payload (with or without 'Exif\\0\\0')."""
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():  # Pillow warns about corrupt EXIF; it is dropped anyway
            warnings.simplefilter("ignore")
            exif.load(tiff_or_app1)
            tags, ifd1 = dict(exif), exif.get_ifd(ExifTags.IFD.IFD1)  # IFD1: the thumbnail
    except (SyntaxError, OSError, ValueError, KeyError, TypeError, struct.error):
        return None, ["EXIF"]
    labels = ["EXIF"] if set(tags) - {ORIENTATION} or ifd1 else []
    return tags.get(ORIENTATION), labels + ["GPS"] * (_GPS_IFD in tags)


def exif_orientation(exif: bytes | None) -> int:
    """The Orientation tag of an EXIF payload (with or without 'Exif\\0\\0'); 1 when it has
    none or cannot be read."""
    value = _exif_info(exif)[0] if exif else None
    return value if isinstance(value, int) else 1


def _orientation(exif_value: object, xmp: bytes) -> int | None:
    """The orientation viewers apply (EXIF, else XMP tiff:Orientation as Pillow does), if not 1."""
    if exif_value is None and (m := _XMP_ORIENTATION.search(xmp)):
        exif_value = int(m[2])
    return exif_value if isinstance(exif_value, int) and 2 <= exif_value <= 8 else None


def _minimal_exif(orientation: int) -> bytes:
    """b'Exif\\0\\0' + a TIFF structure holding only the Orientation tag."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


# --- JPEG --------------------------------------------------------------------------------------

def _scan_end(data: bytes, pos: int, name: str) -> int:
    """Index of the marker that ends the entropy-coded data starting at ``pos``."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise MetadataError(f"{name}: truncated JPEG (scan data without an EOI marker)")
        nxt = data[pos + 1]
        if nxt != 0x00 and not 0xD0 <= nxt <= 0xD7:  # 0xFF00 stuffing and RSTn are scan data
            return pos
        pos += 2


def _jpeg_segments(data: bytes, name: str) -> tuple[list[tuple[int, bytes]], bytes]:
    """Marker segments after SOI (an SOS segment carries its scan data) and the bytes after EOI."""
    segs: list[tuple[int, bytes]] = []
    pos, n = 2, len(data)
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise MetadataError(f"{name}: malformed or truncated JPEG (no marker at byte {pos})")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise MetadataError(f"{name}: truncated JPEG (no EOI marker)")
        marker, pos = data[pos], pos + 1
        if marker == 0xD9:
            if not any(m == 0xDA for m, _ in segs):
                raise MetadataError(f"{name}: malformed JPEG (no image data before EOI)")
            return segs, data[pos:]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            segs.append((marker, bytes((0xFF, marker))))
            continue
        length = int.from_bytes(data[pos:pos + 2], "big")
        if marker in (0x00, 0xD8) or length < 2 or pos + length > n:
            raise MetadataError(f"{name}: malformed or truncated JPEG (marker 0x{marker:02X})")
        start, pos = pos - 2, pos + length
        if marker == 0xDA:
            pos = _scan_end(data, pos, name)
        segs.append((marker, data[start:pos]))


def jpeg_trailer_size(data: bytes, name: str = "<bytes>") -> int:
    """How many bytes follow a JPEG's end-of-image marker (a phone's motion-photo video or
    maker trailer; every copy and anonymized image drops them). Raises :class:`MetadataError`
    where the JPEG itself is truncated or malformed."""
    if not data.startswith(b"\xff\xd8"):
        raise MetadataError(f"{name}: not a JPEG (no start-of-image marker)")
    return len(_jpeg_segments(data, name)[1])


def _kept_icc(icc: bytes) -> tuple[bytes | None, _Labels]:
    """(the profile to write or None, labels) for an embedded ICC profile: a standard one
    rebuilt by :func:`_icc_colour_only`, any other dropped."""
    name = _standard_icc_name(icc)
    kept = _icc_colour_only(icc, name) if name else None
    if kept is None:
        return None, ["ICC profile (non-standard)"]
    return kept, ["ICC profile text"] * (kept != icc)


def _jpeg_icc(segs: list[tuple[int, bytes]]) -> tuple[bytes | None, _Labels]:
    """Reassemble the APP2 ICC_PROFILE chunks (1-based sequence numbers): :func:`_kept_icc`."""
    chunks = sorted((s[16], s[17], s[18:]) for m, s in segs
                    if m == 0xE2 and s[4:16] == b"ICC_PROFILE\x00" and len(s) >= 18)
    if not chunks:
        return None, []
    if [c[0] for c in chunks] != list(range(1, len(chunks) + 1)) or {c[1] for c in chunks} != {
            len(chunks)}:  # missing or repeated chunks: Pillow would not use the profile either
        return None, ["ICC profile (non-standard)"]
    return _kept_icc(b"".join(c[2] for c in chunks))


def _icc_segments(icc: bytes) -> bytes:
    """APP2 ICC_PROFILE segments of at most 65,519 profile bytes each."""
    size = 65519
    parts = [icc[i:i + size] for i in range(0, len(icc), size)]
    return b"".join(b"\xff\xe2" + (len(p) + 16).to_bytes(2, "big") + b"ICC_PROFILE\x00"
                    + bytes((k + 1, len(parts))) + p for k, p in enumerate(parts))


def _jpeg_segment(marker: int, seg: bytes) -> tuple[bytes | None, _Labels]:
    """(bytes to write or None, metadata labels) for one JPEG segment."""
    payload = seg[4:]
    if marker in (0xDC, 0xDD) and len(payload) != 2:  # DNL, DRI: one 2-byte number
        return (seg[:2] + b"\x00\x04" + payload[:2] if len(payload) > 2 else None,
                [f"JPEG marker 0x{marker:02X} of {len(payload)} bytes"])
    if marker in _JPEG_KEPT:
        return seg, []
    if marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
        thumb = payload[12:14] != b"\x00\x00" or len(payload) > 14
        return b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00", ["JFIF thumbnail"] * thumb
    if marker == 0xE0 and payload.startswith(b"JFXX\x00"):
        return None, ["JFIF thumbnail"]
    if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
        return None, _exif_info(payload)[1]
    if marker == 0xE1 and payload.startswith(_XMP_APP1):
        return None, ["XMP"]
    if marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
        return None, []  # judged as a whole, written back rebuilt by _jpeg
    if marker == 0xED:
        return None, ["IPTC" if payload.startswith(b"Photoshop 3.0\x00") else "APP13"]
    if marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
        # colour transform flag: decides YCC/YCCK vs RGB/CMYK decoding; 12 fixed bytes, of
        # which the two flag words are read by no decoder (zeroed)
        return (b"\xff\xee\x00\x0e" + payload[:7] + bytes(4) + payload[11:12],
                ["APP14"] * (len(payload) > 12))
    if marker == 0xFE:
        return None, ["COM"]
    if 0xE0 <= marker <= 0xEF:
        return None, [f"APP{marker - 0xE0}"]
    return None, [f"JPEG marker 0x{marker:02X}"]


def _jpeg(data: bytes, name: str) -> tuple[bytes, _Labels]:
    segs, trailing = _jpeg_segments(data, name)
    icc, labels = _jpeg_icc(segs)
    kept: list[bytes] = []
    labels += ["data after EOI"] if trailing else []
    for marker, seg in segs:
        if icc is not None and marker == 0xE2 and seg[4:16] == b"ICC_PROFILE\x00":
            kept.append(_icc_segments(icc))  # where the first chunk was
            icc = None
        out, found = _jpeg_segment(marker, seg)
        kept += [out] if out is not None else []
        labels += found
    exif = [s[4:] for m, s in segs if m == 0xE1 and s[4:10] == b"Exif\x00\x00"]  # first wins
    xmp = [s for m, s in segs if m == 0xE1 and s[4:].startswith(_XMP_APP1[0])]  # last wins
    orientation = _orientation(_exif_info(exif[0])[0] if exif else None, xmp[-1] if xmp else b"")
    if orientation is not None:
        app1 = _minimal_exif(orientation)
        at = 1 if kept and kept[0].startswith(b"\xff\xe0") else 0
        kept.insert(at, b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1)
    return b"\xff\xd8" + b"".join(kept) + b"\xff\xd9", labels


# --- PNG ---------------------------------------------------------------------------------------

def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + ctype + body + crc


def _png_chunks(data: bytes, name: str) -> tuple[list[tuple[bytes, bytes, bytes]], bytes]:
    """(type, raw chunk, body) for each chunk up to IEND, CRCs checked; the bytes after IEND."""
    chunks: list[tuple[bytes, bytes, bytes]] = []
    pos = len(_PNG_SIGNATURE)
    while True:
        length, ctype = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if len(ctype) < 4 or end > len(data) or not ctype.isalpha():
            raise MetadataError(f"{name}: malformed or truncated PNG (chunk at byte {pos})")
        raw = data[pos:end]
        if zlib.crc32(raw[4:-4]) != int.from_bytes(raw[-4:], "big"):
            raise MetadataError(f"{name}: corrupt PNG (CRC mismatch in {ctype.decode()} chunk)")
        if not chunks and ctype != b"IHDR":
            raise MetadataError(f"{name}: malformed PNG (first chunk is not IHDR)")
        chunks.append((ctype, raw, raw[8:-4]))
        pos = end
        if ctype == b"IEND":
            return chunks, data[pos:]


def _iccp(raw: bytes, body: bytes) -> tuple[bytes | None, _Labels]:
    """iCCP = name, 0, compression method (0), zlib data: kept for standard profiles."""
    profile_name, _, rest = body.partition(b"\x00")
    try:
        inflate = zlib.decompressobj()
        icc = inflate.decompress(rest[1:], 1 << 24) if rest[:1] == b"\x00" else b""
    except zlib.error:
        icc = b""
    kept, labels = _kept_icc(icc)
    if kept is None:
        return None, labels
    if kept == icc and profile_name in _ICCP_NAMES:  # byte for byte, CRC untouched
        return raw, []
    labels += ["ICC profile name"] * (profile_name not in _ICCP_NAMES)  # free text
    return _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(kept, 9)), labels


def _itxt_text(body: bytes) -> tuple[bytes, bytes]:
    """(keyword, text) of an iTXt chunk, the text inflated when compressed."""
    keyword, _, rest = body.partition(b"\x00")
    text = rest[2:].split(b"\x00", 2)[-1]
    try:
        return keyword, zlib.decompress(text) if rest[:1] == b"\x01" else text
    except zlib.error:
        return keyword, b""


def _png_chunk_excess(ctype: bytes, body: bytes, colour_type: int | None) -> str | None:
    """Why a kept chunk carries more than its specification allows (a label), or None. A
    truecolour image's PLTE is only a suggested palette: 768 bytes of anything."""
    n = len(body)
    allowed = _PNG_CHUNK_LENGTHS.get(ctype)
    if ctype == b"bKGD":
        allowed = {1} if colour_type == 3 else {2} if colour_type in (0, 4) else {6}
    elif ctype == b"PLTE" and colour_type in (0, 2, 4, 6):
        return "PNG PLTE (a suggested palette)"
    if allowed is not None and n not in allowed:
        return f"PNG {ctype.decode()} of {n} bytes"
    return None


def _png(data: bytes, name: str) -> tuple[bytes, _Labels]:
    chunks, trailing = _png_chunks(data, name)
    if not any(c == b"IDAT" for c, _, _ in chunks):
        raise MetadataError(f"{name}: malformed PNG (no IDAT chunk)")
    kept, labels = [], ["data after IEND"] if trailing else []
    exif_value, xmp = None, b""
    colour_type = chunks[0][2][9] if len(chunks[0][2]) == 13 else None
    for ctype, raw, body in chunks:
        if ctype in PNG_KEPT_CHUNKS:
            if (bad := _png_chunk_excess(ctype, body, colour_type)) is not None:
                labels.append(bad)  # dropped (an ancillary chunk) or rewritten (IEND)
                kept += [_png_chunk(b"IEND", b"")] if ctype == b"IEND" else []
            else:
                kept.append(raw)
            continue
        found: _Labels = [f"PNG {ctype.decode()}"]
        if ctype == b"iCCP":
            out, found = _iccp(raw, body)
            kept += [out] if out is not None else []
        elif ctype == b"eXIf":
            exif_value, found = _exif_info(body)
        elif ctype == b"iTXt" and (t := _itxt_text(body))[0] == b"XML:com.adobe.xmp":
            xmp, found = t[1], found + ["XMP"]
        labels += found
    orientation = _orientation(exif_value, xmp)
    if orientation is not None:
        kept.insert(1, _png_chunk(b"eXIf", _minimal_exif(orientation)[6:]))
    return _PNG_SIGNATURE + b"".join(kept), labels


# --- public API --------------------------------------------------------------------------------

def _analyse(data: bytes, name: str) -> tuple[bytes, _Labels]:
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data, name)
    if data.startswith(_PNG_SIGNATURE):
        return _png(data, name)
    raise MetadataError(
        f"{name}: cannot strip metadata from {_format_name(data)} images (JPEG and PNG only)")


def strip_metadata(data: bytes, *, name: str = "<bytes>") -> bytes:
    """``data`` (JPEG or PNG, told by its magic bytes) without metadata, pixels untouched.

    The compressed image data is copied byte for byte (no re-encoding).  An EXIF (or XMP)
    orientation other than 1 is kept as the only EXIF tag.  ``name`` starts error messages.
    """
    return _analyse(bytes(data), name)[0]


def copy_without_metadata(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Write ``src`` without metadata to ``dst`` atomically; ``src`` is only read."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and os.path.samefile(src, dst):
        raise MetadataError(f"{src}: refusing to overwrite the source image with its copy")
    data = src.read_bytes()
    out = strip_metadata(data, name=str(src))
    with atomic_path(dst) as tmp:
        tmp.write_bytes(out)


def has_metadata(path_or_bytes: str | os.PathLike[str] | bytes) -> list[str]:
    """Names of the metadata kinds in a JPEG or PNG ("EXIF", "GPS", "XMP", "COM", ...).

    An EXIF that holds only an orientation is not metadata (strip_metadata keeps it); an empty
    list means nothing to strip.  Raises MetadataError for other formats or malformed files.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, name = bytes(path_or_bytes), "<bytes>"
    else:
        data, name = Path(path_or_bytes).read_bytes(), str(path_or_bytes)
    return list(dict.fromkeys(_analyse(data, name)[1]))
