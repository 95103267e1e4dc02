"""nfpack.py: read a netteflow pack (`loader pack`, format in loader/pack.h)
from Python, for peers and tools: the index (checked against its crc32),
every item's path, label and split, and each sample's bytes from the
memory-mapped shards.

    pack = NfPack("/path/to/pack")
    for path, label, split in pack.items(): ...
    data = pack.read(path)          # bytes of the stored JPEG
"""
import mmap
import os
import struct
import zlib

INDEX = "nfpack.idx"


def is_pack(root):
    return os.path.isfile(os.path.join(root, INDEX))


class NfPack:
    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, INDEX), "rb") as f:
            b = f.read()
        if b[:8] != b"NFPACK01" or struct.unpack_from("<I", b, len(b) - 4)[0] != zlib.crc32(b[:-4]):
            raise ValueError(f"{root}: not a pack index, or a damaged one")
        version, self.size, self.quality, nc, ni, ns = struct.unpack_from("<6I", b, 8)
        if version != 1:
            raise ValueError(f"{root}: pack index version {version}")
        off = 32
        self.classes = []
        for _ in range(nc):
            (n,) = struct.unpack_from("<H", b, off)
            self.classes.append(b[off + 2:off + 2 + n].decode())
            off += 2 + n
        self.shard_bytes = list(struct.unpack_from(f"<{ns}Q", b, off))
        off += 8 * ns
        self._items = {}
        self._order = []
        for _ in range(ni):
            (n,) = struct.unpack_from("<H", b, off)
            path = b[off + 2:off + 2 + n].decode()
            off += 2 + n
            label, split, shard, offset, size, crc = struct.unpack_from("<iBIQII", b, off)
            off += 25
            self._items[path] = (label, split, shard, offset, size, crc)
            self._order.append(path)
        self._maps = [None] * ns

    def items(self):
        """(path, label, split) of every item, sorted by path; split 0 train, 1 valid."""
        return [(p, self._items[p][0], self._items[p][1]) for p in self._order]

    def read(self, path, check=True):
        label, split, shard, offset, size, crc = self._items[path]
        if self._maps[shard] is None:  # per process: mappings are made after a fork
            with open(os.path.join(self.root, f"shard-{shard:05d}.nfs"), "rb") as f:
                self._maps[shard] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        data = self._maps[shard][offset:offset + size]
        if check and zlib.crc32(data) != crc:
            raise IOError(f"{path}: checksum mismatch in shard {shard}")
        return data
