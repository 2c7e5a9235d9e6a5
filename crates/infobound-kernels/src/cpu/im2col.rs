//! im2col and its adjoint col2im: the patch matrix of a block of images that the forward and
//! weight-gradient GEMMs read, and the scatter of the input-gradient GEMM's result back onto
//! the images (Chellapilla, Puri & Simard 2006; the layout is in [`im2col`]).

use super::Conv2dGeometry;

/// Writes the im2col matrix of a block of `n` consecutive `images` into `col`, row-major
/// `K × (n·P)`: row `(c, i, j)` holds, image after image, the value that tap `(i, j)` of
/// channel `c` reads under every output pixel. Tap-major rows turn each output row of a tap
/// into one run of `W_out` writes from one input row — a plain copy at stride 1 — and the
/// block's GEMMs read `col` as `W · col` (forward) or `r · colᵀ` (weight gradient).
pub(super) fn im2col(geometry: &Conv2dGeometry, images: &[f32], col: &mut [f32]) {
    match geometry.stride[1] {
        1 => im2col_at_stride::<1>(geometry, images, col),
        2 => im2col_at_stride::<2>(geometry, images, col),
        _ => im2col_at_stride::<0>(geometry, images, col),
    }
}

/// [`im2col`] for horizontal stride `S` (`0`: any stride, read from the geometry), so that the
/// model layers' strides get a copy loop without a stride multiply.
///
/// Most rows are shifted copies of an earlier row ([`Shift`]): one long copy within `col`
/// plus the one output row (or column) that the shift brings in, which leaves the strided
/// gather to the first `s` kernel rows and columns only.
fn im2col_at_stride<const S: usize>(geometry: &Conv2dGeometry, images: &[f32], col: &mut [f32]) {
    let g = geometry;
    let taps = Taps::new(g);
    let [out_h, out_w] = g.out_size;
    let pixels = g.out_pixels();
    let columns = images.len() / g.in_image_len() * pixels;
    taps.for_each(g.in_channels, false, |index, tap| {
        let (earlier, rest) = col.split_at_mut(index * columns);
        let row = &mut rest[..columns];
        // A shifted row is one copy over the whole block; what it carries across an image
        // boundary (the next image's first row or column) is overwritten by the fix-up.
        if let Some((from, shift)) = tap.shift.map(|s| s.source(out_w)) {
            let src = &earlier[from * columns..][..columns];
            row[..columns - shift].copy_from_slice(&src[shift..]);
        }
        for (image, dst) in images
            .chunks_exact(g.in_image_len())
            .zip(row.chunks_exact_mut(pixels))
        {
            let plane = &image[tap.plane.clone()];
            match tap.shift {
                Some(Shift::Rows(_)) => {
                    let last = out_h - 1;
                    tap.gather_row::<S>(g, plane, last, &mut dst[last * out_w..]);
                }
                Some(Shift::Columns(_)) => {
                    for (oh, out_row) in dst.chunks_exact_mut(out_w).enumerate() {
                        out_row[out_w - 1] = tap.read(g, plane, oh, out_w - 1);
                    }
                }
                None => {
                    for (oh, out_row) in dst.chunks_exact_mut(out_w).enumerate() {
                        tap.gather_row::<S>(g, plane, oh, out_row);
                    }
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds every entry of `col` (layout as in [`im2col`]) back onto
/// the input pixel it was read from, dropping taps that fall in the padding. `col` is
/// consumed as scratch: a shifted row is added onto the row it was copied from (the adjoint
/// of the copy in [`im2col_at_stride`]), so rows are visited last to first.
pub(super) fn col2im(geometry: &Conv2dGeometry, col: &mut [f32], images: &mut [f32]) {
    match geometry.stride[1] {
        1 => col2im_at_stride::<1>(geometry, col, images),
        2 => col2im_at_stride::<2>(geometry, col, images),
        _ => col2im_at_stride::<0>(geometry, col, images),
    }
}

/// [`col2im`] for horizontal stride `S` (`0`: any stride), as [`im2col_at_stride`].
fn col2im_at_stride<const S: usize>(
    geometry: &Conv2dGeometry,
    col: &mut [f32],
    images: &mut [f32],
) {
    let g = geometry;
    let taps = Taps::new(g);
    let [out_h, out_w] = g.out_size;
    let pixels = g.out_pixels();
    let columns = images.len() / g.in_image_len() * pixels;
    taps.for_each(g.in_channels, true, |index, tap| {
        let (earlier, rest) = col.split_at_mut(index * columns);
        let row = &mut rest[..columns];
        // The entries that the copy in `im2col` brought in from outside the source row are
        // added to the image directly and zeroed, so that one block-wide add onto the source
        // row carries the others.
        for (image, src) in images
            .chunks_exact_mut(g.in_image_len())
            .zip(row.chunks_exact_mut(pixels))
        {
            let plane = &mut image[tap.plane.clone()];
            match tap.shift {
                Some(Shift::Rows(_)) => {
                    let last = out_h - 1;
                    let last_row = &mut src[last * out_w..];
                    tap.scatter_row::<S>(g, last_row, last, plane);
                    last_row.fill(0.0);
                }
                Some(Shift::Columns(_)) => {
                    for (oh, out_row) in src.chunks_exact_mut(out_w).enumerate() {
                        tap.accumulate(g, plane, oh, out_w - 1, out_row[out_w - 1]);
                        out_row[out_w - 1] = 0.0;
                    }
                }
                None => {
                    for (oh, out_row) in src.chunks_exact(out_w).enumerate() {
                        tap.scatter_row::<S>(g, out_row, oh, plane);
                    }
                }
            }
        }
        if let Some((from, shift)) = tap.shift.map(|s| s.source(out_w)) {
            let dst = &mut earlier[from * columns..][..columns];
            add_assign(&mut dst[shift..], &row[..columns - shift]);
        }
    });
}

fn add_assign(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

/// How an im2col row repeats an earlier one. With `m·d = s` (stride a multiple of the
/// dilation), tap `i` under output row `h` reads input row `h·s + i·d − p`, which tap `i − m`
/// reads under output row `h + 1`: row `(c, i, j)` is row `(c, i − m, j)` moved up one output
/// row, and likewise one output column left for `j`.
#[derive(Debug, Clone, Copy)]
enum Shift {
    /// Copy of the given im2col row moved up one output row; the last output row is new.
    Rows(usize),
    /// Copy of the given im2col row moved left one output column; the last column is new.
    Columns(usize),
}

impl Shift {
    /// The source row and the offset of the copy along `col`'s row: one output row
    /// (`W_out` entries) or one output column (one entry).
    fn source(self, out_w: usize) -> (usize, usize) {
        match self {
            Self::Rows(from) => (from, out_w),
            Self::Columns(from) => (from, 1),
        }
    }
}

/// One im2col row `(c, i, j)`: channel `c`'s plane and the windows of kernel row `i` and
/// kernel column `j`.
struct Tap {
    plane: std::ops::Range<usize>,
    rows: Window,
    cols: Window,
    shift: Option<Shift>,
}

impl Tap {
    /// Input offset of output pixel `(oh, ow)` in the channel plane, if inside the image.
    fn position(&self, g: &Conv2dGeometry, oh: usize, ow: usize) -> Option<usize> {
        let ih = self.rows.position(oh, g.stride[0])?;
        let iw = self.cols.position(ow, g.stride[1])?;
        Some(ih * g.in_size[1] + iw)
    }

    fn read(&self, g: &Conv2dGeometry, plane: &[f32], oh: usize, ow: usize) -> f32 {
        self.position(g, oh, ow).map_or(0.0, |at| plane[at])
    }

    fn accumulate(&self, g: &Conv2dGeometry, plane: &mut [f32], oh: usize, ow: usize, v: f32) {
        if let Some(at) = self.position(g, oh, ow) {
            plane[at] += v;
        }
    }

    /// Output row `oh` of this tap into `out` (at least `W_out` long).
    fn gather_row<const S: usize>(
        &self,
        g: &Conv2dGeometry,
        plane: &[f32],
        oh: usize,
        out: &mut [f32],
    ) {
        let out = &mut out[..g.out_size[1]];
        match self.rows.position(oh, g.stride[0]) {
            Some(ih) => self
                .cols
                .gather::<S>(&plane[ih * g.in_size[1]..], out, g.stride[1]),
            None => out.fill(0.0),
        }
    }

    /// The adjoint of [`Tap::gather_row`].
    fn scatter_row<const S: usize>(
        &self,
        g: &Conv2dGeometry,
        row: &[f32],
        oh: usize,
        plane: &mut [f32],
    ) {
        if let Some(ih) = self.rows.position(oh, g.stride[0]) {
            self.cols.scatter_add::<S>(
                &row[..g.out_size[1]],
                &mut plane[ih * g.in_size[1]..],
                g.stride[1],
            );
        }
    }
}

/// The output positions `[lo, hi)` along one dimension whose tap lands inside the input, the
/// first of them reading input position `first`: output `o` reads `o·s + offset − p`, inside
/// `[0, len)` for `⌈(p − offset)/s⌉ ≤ o < ⌈(len + p − offset)/s⌉`.
#[derive(Debug, Clone, Copy)]
struct Window {
    lo: usize,
    hi: usize,
    first: usize,
}

impl Window {
    fn new(offset: usize, stride: usize, pad: usize, in_len: usize, out_len: usize) -> Self {
        let lo = pad.saturating_sub(offset).div_ceil(stride).min(out_len);
        let hi = (in_len + pad)
            .checked_sub(offset)
            .map_or(0, |limit| limit.div_ceil(stride))
            .min(out_len)
            .max(lo);
        Self {
            lo,
            hi,
            first: (lo * stride + offset).saturating_sub(pad),
        }
    }

    /// Input position read by output position `o`, if inside the input.
    fn position(&self, o: usize, stride: usize) -> Option<usize> {
        (self.lo..self.hi)
            .contains(&o)
            .then(|| self.first + (o - self.lo) * stride)
    }

    /// `out[o] = src[first + (o − lo)·s]` on `[lo, hi)`, zero elsewhere (`S = 0`: stride `s`).
    fn gather<const S: usize>(&self, src: &[f32], out: &mut [f32], stride: usize) {
        let (left, rest) = out.split_at_mut(self.lo);
        let (inside, right) = rest.split_at_mut(self.hi - self.lo);
        left.fill(0.0);
        right.fill(0.0);
        if inside.is_empty() {
            return;
        }
        let src = &src[self.first..];
        match S {
            1 => inside.copy_from_slice(&src[..inside.len()]),
            2 => strided_copy::<2>(src, inside),
            _ => inside
                .iter_mut()
                .zip(src.iter().step_by(stride))
                .for_each(|(d, s)| *d = *s),
        }
    }

    /// `dst[first + (o − lo)·s] += row[o]` on `[lo, hi)`: the adjoint of [`Window::gather`].
    fn scatter_add<const S: usize>(&self, row: &[f32], dst: &mut [f32], stride: usize) {
        let inside = &row[self.lo..self.hi];
        if inside.is_empty() {
            return;
        }
        let dst = &mut dst[self.first..];
        match S {
            1 => dst.iter_mut().zip(inside).for_each(|(d, s)| *d += s),
            2 => strided_add::<2>(inside, dst),
            _ => dst
                .iter_mut()
                .step_by(stride)
                .zip(inside)
                .for_each(|(d, s)| *d += s),
        }
    }
}

/// The windows of every kernel row and column of a geometry, computed once per im2col call.
struct Taps {
    kernel: [usize; 2],
    plane_len: usize,
    /// The tap offset `m = s / d` of [`Shift`] per dimension, if the stride is a multiple of
    /// the dilation and the output has a second row (column) to shift into.
    shift: [Option<usize>; 2],
    rows: Vec<Window>,
    cols: Vec<Window>,
}

impl Taps {
    fn new(g: &Conv2dGeometry) -> Self {
        let windows = |dim: usize| {
            (0..g.kernel_size[dim])
                .map(|i| {
                    Window::new(
                        i * g.dilation[dim],
                        g.stride[dim],
                        g.padding[dim],
                        g.in_size[dim],
                        g.out_size[dim],
                    )
                })
                .collect()
        };
        let shift = |dim: usize| {
            (g.stride[dim].is_multiple_of(g.dilation[dim]) && g.out_size[dim] > 1)
                .then(|| g.stride[dim] / g.dilation[dim])
        };
        Self {
            kernel: g.kernel_size,
            plane_len: g.in_size[0] * g.in_size[1],
            shift: [shift(0), shift(1)],
            rows: windows(0),
            cols: windows(1),
        }
    }

    /// Calls `visit` on every im2col row `(c, i, j)` with its index `(c·k_h + i)·k_w + j`, in
    /// order or in `reverse` (nested loops: a division per row cost more than the copies of
    /// the small late ResNet stages).
    fn for_each(&self, channels: usize, reverse: bool, mut visit: impl FnMut(usize, Tap)) {
        let [kernel_h, kernel_w] = self.kernel;
        let order = |len: usize, at: usize| if reverse { len - 1 - at } else { at };
        for c in 0..channels {
            let channel = order(channels, c);
            for i in 0..kernel_h {
                let i = order(kernel_h, i);
                for j in 0..kernel_w {
                    let j = order(kernel_w, j);
                    let index = (channel * kernel_h + i) * kernel_w + j;
                    visit(index, self.tap(channel, i, j, index));
                }
            }
        }
    }

    fn tap(&self, channel: usize, i: usize, j: usize, index: usize) -> Tap {
        let shift = match self.shift {
            [Some(m), _] if i >= m => Some(Shift::Rows(index - m * self.kernel[1])),
            [_, Some(m)] if j >= m => Some(Shift::Columns(index - m)),
            _ => None,
        };
        Tap {
            plane: channel * self.plane_len..(channel + 1) * self.plane_len,
            rows: self.rows[i],
            cols: self.cols[j],
            shift,
        }
    }
}

/// `out[o] = src[o·S]`: whole `S`-chunks for all but the last element, so the loop
/// vectorises without a bounds test per element.
fn strided_copy<const S: usize>(src: &[f32], out: &mut [f32]) {
    let Some((last, body)) = out.split_last_mut() else {
        return;
    };
    body.iter_mut()
        .zip(src.chunks_exact(S))
        .for_each(|(d, chunk)| *d = chunk[0]);
    *last = src[body.len() * S];
}

/// `dst[o·S] += row[o]`, the adjoint of [`strided_copy`].
fn strided_add<const S: usize>(row: &[f32], dst: &mut [f32]) {
    let Some((last, body)) = row.split_last() else {
        return;
    };
    dst.chunks_exact_mut(S)
        .zip(body)
        .for_each(|(chunk, s)| chunk[0] += s);
    dst[body.len() * S] += last;
}
