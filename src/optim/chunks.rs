//! The tables of the chunk passes: sf_plus's sums, NaP's norms and projection.
//!
//! Each reduction chunk of the arena (at most [`CHUNK`] elements of one tensor,
//! `arena.rs`) is cut into pieces of at most [`PIECE`] elements. One group of 8
//! invocations sweeps a piece, each invocation 4 vec4s one vec4 apart from its
//! neighbours', and each writes its own partial sum: the passes hold no workgroup
//! barrier, which a CPU driver such as lavapipe runs as a switch between
//! coroutines for every 8 invocations (BENCHMARKS.md, "levers"). A workgroup
//! takes [`PIECES_PER_WORKGROUP`] consecutive pieces of one segment, of any
//! tensors, so short tensors share a workgroup; empty pieces fill each segment's
//! last workgroup. The `chunk_sums` pass (`shaders/chunks.wgsl`) then adds each
//! chunk's invocation partials in a fixed order into one partial per chunk, which
//! the last pass sums (per NaP group, or over the whole arena for sf_plus).
//! Pieces and chunks depend only on the tensors, so the sums are the same however
//! the arena is segmented.

use crate::arena::Layout;
use crate::gpu::CHUNK;

/// Elements of one piece: 8 invocations x 4 vec4s (`PIECE_TRIPS` in `shaders/common.wgsl`).
pub const PIECE: usize = 128;
/// Pieces per workgroup of a chunk pass: 256 invocations / 8.
pub const PIECES_PER_WORKGROUP: usize = 32;
/// Invocation partials per piece.
pub const LANES: usize = 8;

/// A piece row (WGSL `Piece`): offset and length in vec4s, the offset relative to
/// its segment, and the NaP group of its tensor (`nap::NO_GROUP` if none).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PieceRow {
    pub offset: u32,
    pub len: u32,
    pub group: u32,
    pub pad0: u32,
}

/// A chunk row of `chunk_sums`: its first piece slot and its number of pieces.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ChunkRow {
    pub first_piece: u32,
    pub pieces: u32,
}

/// The tables of one arena: every piece slot (segment by segment, each segment's
/// slots a whole number of workgroups), every chunk, and each segment's
/// (first slot, workgroups).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChunkTables {
    pub pieces: Vec<PieceRow>,
    pub chunks: Vec<ChunkRow>,
    pub segments: Vec<(u32, u32)>,
}

impl ChunkTables {
    /// The tables of `layout`, with each tensor's NaP group from `group_of_tensor`.
    pub fn new(layout: &Layout, group_of_tensor: &[u32]) -> ChunkTables {
        const EMPTY: PieceRow = PieceRow {
            offset: 0,
            len: 0,
            group: crate::nap::NO_GROUP,
            pad0: 0,
        };
        let mut pieces = Vec::new();
        let mut chunks = Vec::with_capacity(layout.chunks.len());
        let mut segments = Vec::with_capacity(layout.segments.len());
        for seg in &layout.segments {
            let first = pieces.len();
            for c in &layout.chunks[seg.first_chunk..seg.first_chunk + seg.n_chunks] {
                chunks.push(ChunkRow {
                    first_piece: pieces.len() as u32,
                    pieces: c.len.div_ceil(PIECE) as u32,
                });
                for at in (0..c.len).step_by(PIECE) {
                    pieces.push(PieceRow {
                        offset: ((c.offset + at - seg.start) / 4) as u32,
                        len: (c.len - at).min(PIECE).div_ceil(4) as u32,
                        group: group_of_tensor[c.tensor],
                        pad0: 0,
                    });
                }
            }
            let workgroups = (pieces.len() - first).div_ceil(PIECES_PER_WORKGROUP);
            pieces.resize(first + workgroups * PIECES_PER_WORKGROUP, EMPTY);
            segments.push((first as u32, workgroups as u32));
        }
        ChunkTables {
            pieces,
            chunks,
            segments,
        }
    }
}

const _: () = assert!(CHUNK.is_multiple_of(PIECE) && PIECE == LANES * 4 * 4);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::TensorSpec;

    #[test]
    fn short_tensors_share_a_workgroup_and_segments_fill_whole_ones() {
        let specs = [
            TensorSpec::new("a", &[CHUNK + 130]),
            TensorSpec::new("b", &[5]),
            TensorSpec::new("c", &[2 * CHUNK]),
        ];
        let whole = ChunkTables::new(&Layout::new(&specs, 1 << 30).unwrap(), &[0, 1, 2]);
        // a: 32 + 2 pieces (the last of 2 elements: one vec4), b: 1, c: 64.
        assert_eq!(whole.pieces.iter().filter(|p| p.len > 0).count(), 32 + 2 + 1 + 64);
        assert_eq!(whole.segments, vec![(0, 4)]);
        let lens: Vec<_> = whole.chunks.iter().map(|c| (c.first_piece, c.pieces)).collect();
        assert_eq!(lens, vec![(0, 32), (32, 2), (34, 1), (35, 32), (67, 32)]);
        assert_eq!(
            (whole.pieces[33].len, whole.pieces[34].len, whole.pieces[34].group),
            (1, 2, 1)
        );
        // Two chunks per segment: the same pieces, each segment padded to whole workgroups.
        let split = ChunkTables::new(&Layout::new(&specs, (2 * CHUNK * 4) as u64).unwrap(), &[0, 1, 2]);
        assert!(split.segments.len() > 1);
        assert_eq!(
            split.pieces.len(),
            32 * split.segments.iter().map(|s| s.1 as usize).sum::<usize>()
        );
        let sizes = |t: &ChunkTables| -> Vec<u32> { t.pieces.iter().map(|p| p.len).filter(|&l| l > 0).collect() };
        assert_eq!(sizes(&whole), sizes(&split));
    }
}
