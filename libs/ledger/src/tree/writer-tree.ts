/**
 * The Merkle tree kept by the ledger's writer thread (I3), as plain JavaScript that runs inside the
 * writer's eval'd source (see sqlite-writer.ts), with `db` (the writer's connection) and `require` in
 * scope. It hashes each event's canonical envelope text as the rows go in and writes the tree's tiles,
 * compact range and root, and the CheckpointSigned events it sees, in the SAME transaction as the events:
 * the persisted tree always covers exactly the committed log, so a checkpoint can be signed at any
 * durable size and nothing is ever read back from the log to hash it.
 *
 * It writes the tables and layout of MerkleTreeProjection (tree-tiles.ts): tile (L, i) holds the hashes
 * of the nodes at height 8·L with indices [256·i, 256·i + 256); the compact range is 8 bytes of
 * big-endian size then one 32-byte root per set bit of size, largest first; the root is RFC 6962's MTH.
 * Test `writer-tree.int.spec.ts` pins it against the library's MemoryTree and the projection's proofs.
 *
 * The state in memory is reloaded from the database whenever a transaction fails (its writes rolled
 * back), so memory never runs ahead of what is stored. At start the stored tree MUST cover the log
 * exactly (the store brings it up to date before it starts the writer); otherwise every write is refused.
 */
export const WRITER_TREE_SOURCE = String.raw`
const tree = workerData.tree !== true ? undefined : (() => {
  const { hash } = require('node:crypto');
  const WIDTH = 256;
  const HASH = 32;
  const CHECKPOINT_SUFFIX = '"type":"CheckpointSigned"}';
  const st = {
    head: db.prepare('SELECT max(position) + 1 FROM events').pluck(),
    state: db.prepare('SELECT size, compact_range FROM tree_state WHERE id = 1'),
    tile: db.prepare('SELECT hashes FROM tree_tiles WHERE level = ? AND idx = ?').pluck(),
    saveTile: db.prepare('INSERT INTO tree_tiles (level, idx, hashes) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes'),
    saveState: db.prepare('INSERT INTO tree_state (id, size, compact_range, root) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET size = excluded.size, compact_range = excluded.compact_range, root = excluded.root'),
    saveCheckpoint: db.prepare('INSERT OR IGNORE INTO tree_checkpoints (size, position, time_ms, root, note) VALUES (?, ?, ?, ?, ?)'),
  };
  // Hashes are held as 32-character latin1 strings (one char per byte): crypto.hash returns a string
  // in a fraction of the time it takes to return a Buffer, and they are copied into tiles by byte.
  const nodeScratch = Buffer.alloc(1 + 2 * HASH);
  nodeScratch[0] = 1;
  let size = 0;
  let nodes = [];
  let live = [];
  let finished = [];
  let changed = false;

  function nodeHash(left, right) {
    nodeScratch.write(left, 1, HASH, 'latin1');
    nodeScratch.write(right, 1 + HASH, HASH, 'latin1');
    return hash('sha256', nodeScratch, 'latin1');
  }
  function leafHash(text) {
    // UTF-8 of U+0000 is the single byte 0x00, so this hashes 0x00 ‖ UTF-8(text). Stored envelopes are
    // canonical JSON, which escapes lone surrogates, so the UTF-8 is exact.
    return hash('sha256', '\u0000' + text, 'latin1');
  }
  function record(h, level, index) {
    const idx = Math.floor(index / WIDTH);
    const slot = index % WIDTH;
    let t = live[level];
    if (t === undefined || t.idx !== idx) {
      // The level moves on to a new tile: the one it leaves is complete, and written if it changed.
      if (t !== undefined && t.dirty) finished.push({ level, idx: t.idx, bytes: t.bytes });
      t = { idx, bytes: Buffer.alloc(WIDTH * HASH), count: 0, dirty: false };
      live[level] = t;
    }
    t.bytes.write(h, slot * HASH, HASH, 'latin1');
    t.count = slot + 1;
    t.dirty = true;
  }
  function appendLeaf(text) {
    let h = leafHash(text);
    let start = size;
    let width = 1;
    let height = 0;
    record(h, 0, start);
    // Each trailing 1 bit of the old size is a perfect subtree waiting for its right sibling.
    for (let n = size; n % 2 === 1; n = (n - 1) / 2) {
      h = nodeHash(nodes.pop(), h);
      start -= width;
      width *= 2;
      height += 1;
      if (height % 8 === 0) record(h, height / 8, start / width);
    }
    nodes.push(h);
    size += 1;
    changed = true;
  }
  function root() {
    let acc = nodes[nodes.length - 1];
    for (let i = nodes.length - 2; i >= 0; i--) acc = nodeHash(nodes[i], acc);
    return acc;
  }
  function compactRange() {
    const out = Buffer.alloc(8 + HASH * nodes.length);
    out.writeBigUInt64BE(BigInt(size), 0);
    for (let i = 0; i < nodes.length; i++) out.write(nodes[i], 8 + HASH * i, HASH, 'latin1');
    return out;
  }
  return {
    /** Reads the stored tree; throws when it does not cover the log exactly. */
    load() {
      const head = st.head.get() ?? 0;
      const row = st.state.get();
      const stored = row === undefined ? 0 : row.size;
      if (stored !== head) throw new Error('the stored Merkle tree covers ' + stored + ' events but the log holds ' + head);
      size = stored;
      nodes = [];
      live = [];
      finished = [];
      changed = false;
      if (row === undefined) return;
      const bytes = row.compact_range;
      for (let i = 8; i < bytes.length; i += HASH) nodes.push(bytes.toString('latin1', i, i + HASH));
      for (let level = 0; ; level++) {
        const count = Math.floor(size / 2 ** (8 * level));
        if (count === 0) break;
        const idx = Math.floor((count - 1) / WIDTH);
        const t = { idx, bytes: Buffer.alloc(WIDTH * HASH), count: count - idx * WIDTH, dirty: false };
        const tile = st.tile.get(level, idx);
        if (tile === undefined || tile.length !== t.count * HASH) throw new Error('the stored Merkle tree has no complete tile (' + level + ', ' + idx + ')');
        t.bytes.set(tile);
        live[level] = t;
      }
    },
    /** Hashes one stored envelope text at the next position; records it if it is a checkpoint. */
    append(position, text) {
      if (position !== size) throw new Error('the Merkle tree is at ' + size + ' but the event is at position ' + position);
      appendLeaf(text);
      if (text.endsWith(CHECKPOINT_SUFFIX)) {
        const d = JSON.parse(text).data;
        st.saveCheckpoint.run(d.size, position, d.timeMs, Buffer.from(d.rootHex, 'hex'), d.note);
      }
    },
    /** Writes what changed, inside the transaction that wrote the events. */
    persist() {
      if (!changed) return;
      for (const f of finished) st.saveTile.run(f.level, f.idx, f.bytes);
      for (let level = 0; level < live.length; level++) {
        const t = live[level];
        if (t.dirty) st.saveTile.run(level, t.idx, t.bytes.subarray(0, t.count * HASH));
      }
      st.saveState.run(size, compactRange(), Buffer.from(root(), 'latin1'));
    },
    /** The transaction committed: what it wrote is now the stored state. */
    committed() {
      finished = [];
      for (const t of live) t.dirty = false;
      changed = false;
    },
  };
})();
`;
