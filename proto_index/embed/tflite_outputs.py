"""Make an intermediate tensor of a TFLite model one of its outputs, by editing the model's bytes.

A runtime may free or reuse an intermediate tensor's memory once it is consumed (ai-edge-litert then
refuses to read it back), and keeping every tensor instead is slow and costs memory. A graph output is
always kept, so the tensor is appended to the first subgraph's ``outputs``. The file is a FlatBuffer
(TFLite schema: Model.subgraphs is field 2, SubGraph.outputs field 2); the new outputs vector is written
after the end of the data and the one offset that pointed to the old vector is redirected to it, so
nothing else moves.
"""
from __future__ import annotations

import struct

MODEL_SUBGRAPHS = 2
SUBGRAPH_OUTPUTS = 2


def _u32(data: bytes | bytearray, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _field(data: bytes | bytearray, table: int, field: int) -> int:
    """The position of a table's field, or 0 when the field is absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    vtable_size = struct.unpack_from("<H", data, vtable)[0]
    slot = 4 + 2 * field
    if slot + 2 > vtable_size:
        return 0
    offset = struct.unpack_from("<H", data, vtable + slot)[0]
    return table + offset if offset else 0


def _outputs_field(data: bytes | bytearray) -> int:
    """The position of the first subgraph's ``outputs`` offset field."""
    root = _u32(data, 0)
    subgraphs_field = _field(data, root, MODEL_SUBGRAPHS)
    if not subgraphs_field:
        raise ValueError("the model has no subgraphs")
    subgraphs = subgraphs_field + _u32(data, subgraphs_field)
    if _u32(data, subgraphs) < 1:
        raise ValueError("the model has no subgraphs")
    first = subgraphs + 4
    subgraph = first + _u32(data, first)
    outputs_field = _field(data, subgraph, SUBGRAPH_OUTPUTS)
    if not outputs_field:
        raise ValueError("the model's first subgraph declares no outputs")
    return outputs_field


def graph_outputs(model: bytes) -> list[int]:
    """The tensor indices of the first subgraph's outputs."""
    field = _outputs_field(model)
    vector = field + _u32(model, field)
    return list(struct.unpack_from(f"<{_u32(model, vector)}i", model, vector + 4))


def with_output(model: bytes, tensor: int) -> bytes:
    """``model`` with tensor index ``tensor`` appended to its first subgraph's outputs (unchanged if already one)."""
    outputs = graph_outputs(model)
    if tensor in outputs:
        return bytes(model)
    outputs.append(tensor)
    data = bytearray(model)
    data.extend(b"\0" * (-len(data) % 16))  # a vector's length word must be aligned
    vector = len(data)
    data.extend(struct.pack(f"<I{len(outputs)}i", len(outputs), *outputs))
    field = _outputs_field(data)
    struct.pack_into("<I", data, field, vector - field)
    return bytes(data)
