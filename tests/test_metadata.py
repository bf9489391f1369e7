"""Metadata stripping of copied images: no metadata left, decoded pixels bit-identical."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from anonbench.metadata import MetadataError, copy_without_metadata, has_metadata, strip_metadata

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)  # not square: orientation is visible
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description dc:creator="Jane Doe"/></rdf:RDF></x:xmpmeta>')
XMP_NS = b"http://ns.adobe.com/xap/1.0/\x00"


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def encode(im: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    f = io.BytesIO()
    im.save(f, fmt, **kw)
    return f.getvalue()


def after_jfif(jpeg: bytes, *segments: bytes) -> bytes:
    """Insert segments after Pillow's JFIF APP0 (Pillow < 11 has no ``xmp=`` save option)."""
    assert jpeg[2:4] == b"\xff\xe0" and jpeg[4:6] == b"\x00\x10"
    return jpeg[:20] + b"".join(segments) + jpeg[20:]


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im).copy()


def upright(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(ImageOps.exif_transpose(im)).copy()


def exif_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as im:
        return dict(im.getexif())


def private_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010E] = "holiday at home"  # ImageDescription
    exif[0x010F] = "Camera of Jane Doe"  # Make
    exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (59.0, 54.0, 1.5)}  # latitude
    if orientation is not None:
        exif[0x0112] = orientation
    return exif


def icc_with_description(text: str, pad_to: int = 0) -> bytes:
    """Pillow's sRGB profile with its 'desc' tag replaced (an mluc tag appended at the end)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    name = text.encode("utf-16-be")
    mluc = b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(name), 28) + name
    offset = len(icc) + (-len(icc)) % 4
    icc += bytes(offset - len(icc)) + mluc
    for i in range(int.from_bytes(icc[128:132], "big")):
        if icc[132 + 12 * i:136 + 12 * i] == b"desc":
            icc[136 + 12 * i:144 + 12 * i] = struct.pack(">II", offset, len(mluc))
    icc += bytes(max(0, pad_to - len(icc)))
    icc[0:4] = len(icc).to_bytes(4, "big")
    icc[84:100] = bytes(16)  # profile ID (MD5): 0 means not computed
    return bytes(icc)


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
PRIVATE_ICC = icc_with_description("Camera of Jane Doe")


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        end = pos + 12 + int.from_bytes(data[pos:pos + 4], "big")
        chunks.append(data[pos:end])
        pos = end
    return chunks


def test_private_icc_profile_is_readable():
    desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(PRIVATE_ICC)))
    assert desc.strip() == "Camera of Jane Doe"


def test_jpeg_every_kind_of_metadata_is_dropped():
    base = after_jfif(encode(Image.fromarray(RGB), exif=private_exif().tobytes(),
                             comment=b"shot by Jane", icc_profile=PRIVATE_ICC),
                      segment(0xE1, XMP_NS + XMP))
    assert base[2:4] == b"\xff\xe0"  # Pillow's JFIF first: swap it for one with a thumbnail
    jfif = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x02\x01" + bytes(range(6)))
    jfxx = segment(0xE0, b"JFXX\x00\x13" + bytes(9))
    iptc = segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x08"
                         b"\x1c\x02P\x00\x04Jane")  # IPTC By-line
    private = segment(0xE9, b"vendor secret") + segment(0xEF, b"more")
    data = b"\xff\xd8" + jfif + jfxx + iptc + private + base[20:] + b"trailing secret"
    found = has_metadata(data)
    for kind in ("EXIF", "GPS", "XMP", "COM", "IPTC", "JFIF thumbnail", "APP9", "APP15",
                 "ICC profile (non-standard)", "data after EOI"):
        assert kind in found
    out = strip_metadata(data)
    assert has_metadata(out) == []
    assert np.array_equal(pixels(out), pixels(data))
    for secret in (b"Jane", b"holiday", b"Exif", b"adobe", b"ICC_PROFILE", b"JFXX", b"trailing"):
        assert secret not in out
    assert out.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") and out[18:20] == b"\x00\x00"
    with Image.open(io.BytesIO(out)) as im:
        assert "exif" not in im.info and "icc_profile" not in im.info and "comment" not in im.info


def test_progressive_jpeg_with_markers_between_scans():
    big = np.tile(RGB, (2, 2, 1))
    data = encode(Image.fromarray(big), progressive=True, comment=b"Jane", restart_marker_blocks=2)
    first = data.index(b"\xff\xda")
    second = data.index(b"\xff\xda", first + 2)
    between = segment(0xFE, b"between scans") + segment(0xE1, XMP_NS + XMP)
    data = data[:second] + between + data[second:]
    assert data.count(b"\xff\xda") > 2  # several scans
    assert b"\xff\xd0" in data or b"\xff\xdd" not in data  # RSTn where Pillow writes them
    assert {"COM", "XMP"} <= set(has_metadata(data))
    out = strip_metadata(data)
    assert has_metadata(out) == [] and b"between scans" not in out and b"Jane" not in out
    assert out.count(b"\xff\xda") == data.count(b"\xff\xda")
    assert np.array_equal(pixels(out), pixels(data))


def icc_tags(icc: bytes) -> dict[bytes, bytes]:
    """Tag signature -> the tag's data."""
    out = {}
    for i in range(int.from_bytes(icc[128:132], "big")):
        sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
        out[sig] = icc[off:off + size]
    return out


def with_tag(icc: bytes, sig: bytes, data: bytes, *, private: bytes = b"") -> bytes:
    """``icc`` with tag ``sig``'s data replaced (appended at the end) and ``private`` appended
    after it, referenced by no tag (hidden bytes between tags)."""
    icc = bytearray(icc)
    icc += bytes(-len(icc) % 4)
    offset = len(icc)
    icc += data + private
    for i in range(int.from_bytes(icc[128:132], "big")):
        if icc[132 + 12 * i:136 + 12 * i] == sig:
            icc[136 + 12 * i:144 + 12 * i] = struct.pack(">II", offset, len(data))
    icc[0:4] = len(icc).to_bytes(4, "big")
    icc[84:100] = bytes(16)
    return bytes(icc)


def mluc(text: str) -> bytes:
    t = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(t), 28) + t


def to_lab(icc: bytes) -> np.ndarray:
    """RGB through the profile into Lab: what the profile does to the pixels."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    t = ImageCms.buildTransform(src, ImageCms.createProfile("LAB"), "RGB", "LAB")
    return np.asarray(ImageCms.applyTransform(Image.fromarray(RGB), t))


def curve(gamma: float, n: int = 20_000) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">I", n) + (
        (np.linspace(0, 1, n) ** gamma * 65535).round().astype(">u2").tobytes())


#: sRGB whose copyright names a person, with tone curves of 20,000 entries (the profile needs
#: two APP2 chunks, also when rebuilt) and hidden bytes between the tags
PRIVATE_SRGB = with_tag(with_tag(with_tag(with_tag(
    SRGB, b"cprt", mluc("Jane Doe 12 Privet Drive")), b"rTRC", curve(2.2)), b"gTRC", curve(2.3)),
    b"bTRC", curve(2.1), private=b"Jane's secret")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_standard_profile_keeps_only_its_colour_tags(fmt):
    """A standard description does not make the rest of a profile standard: its copyright (and
    device, private) tags and the bytes between tags are free text. The profile is rebuilt from
    the tags a colour transform reads, which transform the pixels exactly as before."""
    assert "Jane" in ImageCms.getProfileCopyright(ImageCms.ImageCmsProfile(io.BytesIO(
        PRIVATE_SRGB)))
    for icc, chunks in ((SRGB, 1), (PRIVATE_SRGB, 2)):
        data = encode(Image.fromarray(RGB), fmt, icc_profile=icc)
        if fmt == "JPEG":
            assert data.count(b"ICC_PROFILE\x00") == chunks
        assert has_metadata(data) == ["ICC profile text"]  # Pillow's sRGB: "No copyright, ..."
        out = strip_metadata(data)
        for secret in (b"Jane", "Jane".encode("utf-16-be"), b"copyright"):
            assert secret not in out
        assert has_metadata(out) == [] and strip_metadata(out) == out
        assert np.array_equal(pixels(out), pixels(data))
        if fmt == "JPEG":
            assert out.count(b"ICC_PROFILE\x00") == chunks
        with Image.open(io.BytesIO(out)) as im:
            kept = im.info["icc_profile"]
        assert set(icc_tags(kept)) == set(icc_tags(icc)) - {b"cprt"}
        assert ImageCms.getProfileDescription(
            ImageCms.ImageCmsProfile(io.BytesIO(kept))).strip() == "sRGB built-in"
        assert np.array_equal(to_lab(kept), to_lab(icc))


def test_cmyk_jpeg_keeps_adobe_marker():
    cmyk = Image.fromarray(RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8), "CMYK")
    data = encode(cmyk, comment=b"Jane")
    out = strip_metadata(data)
    assert b"\xff\xee\x00\x0eAdobe" in out and b"Jane" not in out
    assert np.array_equal(pixels(out), pixels(data))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_orientation_is_the_only_tag_kept(fmt):
    data = encode(Image.fromarray(RGB), fmt, exif=private_exif(orientation=6).tobytes())
    assert {"EXIF", "GPS"} <= set(has_metadata(data))
    out = strip_metadata(data)
    assert exif_of(out) == {0x0112: 6} and has_metadata(out) == []
    assert b"Jane" not in out and b"holiday" not in out
    assert np.array_equal(pixels(out), pixels(data))
    assert upright(out).shape == (40, 24, 3)
    assert np.array_equal(upright(out), upright(data))


def test_orientation_from_xmp_and_orientation_one():
    xmp = XMP.replace(b"<rdf:Description", b'<rdf:Description tiff:Orientation="8"')
    data = after_jfif(encode(Image.fromarray(RGB)), segment(0xE1, XMP_NS + xmp))
    if upright(data).shape != (40, 24, 3):
        pytest.skip("this Pillow ignores XMP tiff:Orientation in JPEG")
    out = strip_metadata(data)
    assert exif_of(out) == {0x0112: 8} and b"Jane" not in out
    assert np.array_equal(upright(out), upright(data)) and upright(out).shape == (40, 24, 3)
    data = encode(Image.fromarray(RGB), exif=private_exif(orientation=1).tobytes())
    plain = strip_metadata(data)
    assert b"Exif" not in plain and exif_of(plain) == {} and has_metadata(plain) == []
    assert np.array_equal(pixels(plain), pixels(data))


def test_png_text_time_exif_private_chunks_dropped():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "Jane again", zip=True)
    info.add_itxt("Description", "Jane's house", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add(b"tIME", bytes((7, 230, 1, 2, 3, 4, 5)))
    info.add(b"prVt", b"Jane private")
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    data = encode(Image.fromarray(RGB), "PNG", pnginfo=info, exif=private_exif().tobytes(),
                  icc_profile=PRIVATE_ICC)
    found = has_metadata(data)
    for kind in ("PNG tEXt", "PNG zTXt", "PNG iTXt", "XMP", "PNG tIME", "PNG prVt", "EXIF",
                 "GPS", "ICC profile (non-standard)"):
        assert kind in found
    out = strip_metadata(data)
    assert has_metadata(out) == [] and b"Jane" not in out
    assert np.array_equal(pixels(out), pixels(data))
    kept = [c for c in png_chunks(data) if c[4:8] in (b"IHDR", b"gAMA", b"IDAT", b"IEND")]
    assert png_chunks(out) == kept  # byte for byte, CRCs untouched


def test_png_palette_transparency_and_standard_icc_kept():
    pal = Image.fromarray(RNG.integers(0, 4, (8, 8), dtype=np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    data = strip_metadata(encode(pal, "PNG", transparency=1, icc_profile=SRGB, dpi=(72, 72)))
    assert has_metadata(data) == []
    assert strip_metadata(data) == data
    assert {c[4:8] for c in png_chunks(data)} >= {b"tRNS", b"pHYs", b"iCCP", b"PLTE"}
    data = strip_metadata(encode(Image.fromarray(RGB), "PNG", icc_profile=SRGB))
    # a standard profile under a free-text name: the name goes, the profile stays
    chunk = next(c for c in png_chunks(data) if c[4:8] == b"iCCP")
    body = b"Jane's profile\x00" + chunk[8:-4][len(b"ICC Profile\x00"):]
    crc = zlib.crc32(b"iCCP" + body).to_bytes(4, "big")
    new = len(body).to_bytes(4, "big") + b"iCCP" + body + crc
    renamed = data.replace(chunk, new)
    assert has_metadata(renamed) == ["ICC profile name"]
    out = strip_metadata(renamed)
    assert out == data and has_metadata(out) == []


def test_copy_without_metadata(tmp_path):
    src = tmp_path / "in.jpg"
    src.write_bytes(encode(Image.fromarray(RGB), exif=private_exif().tobytes(), comment=b"Jane"))
    before = src.read_bytes(), os.stat(src).st_mtime_ns
    dst = tmp_path / "out" / "copy.jpg"
    copy_without_metadata(src, dst)
    assert (src.read_bytes(), os.stat(src).st_mtime_ns) == before
    assert has_metadata(dst) == [] and np.array_equal(pixels(dst.read_bytes()), pixels(before[0]))
    assert sorted(p.name for p in dst.parent.iterdir()) == ["copy.jpg"]
    with pytest.raises(MetadataError, match="refusing"):
        copy_without_metadata(src, src)


@pytest.mark.parametrize("case", ["truncated_jpeg", "gif", "truncated_png", "bad_crc"])
def test_unsupported_or_malformed_names_the_file(tmp_path, case):
    jpeg, png = encode(Image.fromarray(RGB)), encode(Image.fromarray(RGB), "PNG")
    data = {"truncated_jpeg": jpeg[: len(jpeg) // 2], "gif": encode(Image.fromarray(RGB), "GIF"),
            "truncated_png": png[:-20], "bad_crc": png[:40] + bytes([png[40] ^ 1]) + png[41:]}[case]
    src, dst = tmp_path / f"{case}.img", tmp_path / "out.img"
    src.write_bytes(data)
    with pytest.raises(MetadataError) as err:
        copy_without_metadata(src, dst)
    assert str(err.value).startswith(f"{src}: ")
    if case == "gif":
        assert str(err.value) == f"{src}: cannot strip metadata from GIF images (JPEG and PNG only)"
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no copy, no temp file
    with pytest.raises(MetadataError, match="^<bytes>: "):
        has_metadata(data)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + ctype + body + zlib.crc32(ctype + body).to_bytes(4, "big")


@pytest.mark.parametrize("where", ["pHYs", "gAMA", "cHRM", "sRGB", "sBIT", "bKGD", "IEND",
                                   "PLTE"])
def test_kept_png_chunks_carry_no_more_than_their_specification(where):
    """Bytes appended to a chunk that is kept (pHYs, gAMA, ...; IEND), or a truecolour image's
    suggested palette, are read by no decoder and were copied as they were."""
    data = encode(Image.fromarray(RGB), "PNG")
    secret = b"Jane Doe, 12 Privet Drive"
    bodies = {b"pHYs": bytes(9), b"gAMA": (45455).to_bytes(4, "big"), b"cHRM": bytes(32),
              b"sRGB": b"\x00", b"sBIT": b"\x08\x08\x08", b"bKGD": bytes(6),
              b"PLTE": secret + bytes(-len(secret) % 3)}
    chunks = png_chunks(data)
    ctype = where.encode()
    if ctype == b"IEND":
        chunks[-1] = _png_chunk(b"IEND", secret)
    else:
        body = bodies[ctype] + (b"" if ctype == b"PLTE" else secret)
        chunks.insert(1, _png_chunk(ctype, body))
    bad = data[:8] + b"".join(chunks)
    assert np.array_equal(pixels(bad), pixels(data))  # every decoder reads it as before
    assert has_metadata(bad)
    out = strip_metadata(bad)
    assert secret not in out and has_metadata(out) == []
    assert np.array_equal(pixels(out), pixels(data))


def _with_header(icc: bytes, at: int, value: bytes) -> bytes:
    return icc[:at] + value + icc[at + len(value):]


@pytest.mark.parametrize("how", ["tag size over text", "text-typed colour tag", "header"])
def test_a_standard_profile_carries_no_free_bytes(how):
    """A kept colour tag whose declared size reaches over appended text, a colour tag of a text
    type, and the header's date, maker, model and creator were copied as they were."""
    secret = b"Jane Doe 12 Privet"
    tags = icc_tags(SRGB)
    if how == "tag size over text":
        icc = with_tag(SRGB, b"rTRC", tags[b"rTRC"] + secret)
    elif how == "text-typed colour tag":
        icc = bytearray(SRGB)  # the luminance tag (kept: lumi) as free text
        icc = with_tag(bytes(icc), b"wtpt", b"text" + bytes(4) + secret)
    else:
        icc = _with_header(_with_header(SRGB, 48, b"JANE"), 52, b"DOE!")
        icc = _with_header(_with_header(icc, 80, b"JD42"), 24, bytes((7, 207, 0, 12)))
    data = encode(Image.fromarray(RGB), "JPEG", icc_profile=icc)  # APP2: the profile as is
    out = strip_metadata(data)
    for planted in (secret, b"JANE", b"DOE!", b"JD42", bytes((7, 207, 0, 12))):
        assert planted not in out
    assert has_metadata(out) == [] and np.array_equal(pixels(out), pixels(data))
    with Image.open(io.BytesIO(out)) as im:
        kept = im.info.get("icc_profile")
    if how == "text-typed colour tag":  # a white point that is not XYZ: the profile goes
        assert kept is None
    else:
        assert np.array_equal(to_lab(kept), to_lab(SRGB))


def test_kept_jpeg_segments_carry_no_free_bytes():
    """A DNL segment longer than its 2-byte number (libjpeg skips it), and the Adobe APP14 flag
    words (no decoder reads them), were copied as they were."""
    secret = b"Jane Doe 12 Privet"
    data = encode(Image.fromarray(RGB), "JPEG")
    bad = data[:-2] + segment(0xDC, bytes((0, 24)) + secret) + data[-2:]
    assert np.array_equal(pixels(bad), pixels(data))
    out = strip_metadata(bad)
    assert secret not in out and np.array_equal(pixels(out), pixels(data))
    cmyk = encode(Image.fromarray(RGB).convert("CMYK"), "JPEG")
    flags = cmyk.index(b"Adobe") + 7  # after "Adobe" and the version
    marked = cmyk[:flags] + b"JD" + b"42" + cmyk[flags + 4:]
    out = strip_metadata(marked)
    assert b"JD42" not in out and np.array_equal(pixels(out), pixels(cmyk))
    assert strip_metadata(out) == out
