//! Image preprocessing that reproduces Hugging Face's `BlipImageProcessorPil` bit for bit:
//! PIL `convert("RGB")`, Pillow's bicubic `resize` on the uint8 image, `x / 255`, then
//! `(x - mean) / std`.
//!
//! Every public function validates its input and returns [`PreprocessError`] rather than
//! panicking, because in wasm a panic takes the whole app down.

use std::borrow::Cow;
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};

/// OpenAI CLIP channel means, as BLIP's processor config gives them.
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
/// OpenAI CLIP channel standard deviations, as BLIP's processor config gives them.
// Digits as in BLIP's preprocessor_config.json; numpy rounds them to these same f32s.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];
/// Largest decoded image accepted, in pixels (refuse before allocating).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Largest width or height accepted: the most that JPEG and GIF headers can express.
pub const MAX_SIDE: u32 = 65_535;

/// Decoders may allocate a whole RGBA8 frame of [`MAX_PIXELS`]; 16-bit images get half as many.
const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4;

/// Pillow's fixed-point precision for 8-bit resampling (`32 - 8 - 2`: two bits of headroom
/// for the negative lobes of the filter).
const PRECISION_BITS: u32 = 22;
/// Bicubic kernel radius in source pixels, before scaling for downsampling.
const BICUBIC_SUPPORT: f64 = 2.0;
/// transformers passes `rescale_factor=1/255` as a Python float, i.e. this f64.
const RESCALE_FACTOR: f64 = 1.0 / 255.0;

/// Why an image could not be preprocessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    /// Not a PNG/JPEG/WebP/GIF, or corrupt or truncated data.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The image (or a requested size) has zero width or height.
    #[error("image has no pixels ({width}x{height})")]
    Empty { width: u32, height: u32 },
    /// Over [`MAX_PIXELS`] or [`MAX_SIDE`], or over a decoder or allocation limit.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// A pixel buffer whose length does not match its dimensions.
    #[error("pixel buffer holds {actual} bytes but a {width}x{height} image needs {expected}")]
    BufferLength { width: u32, height: u32, expected: u64, actual: u64 },
}

impl From<ImageError> for PreprocessError {
    fn from(err: ImageError) -> Self {
        match err {
            ImageError::Limits(_) => Self::TooLarge(err.to_string()),
            _ => Self::Decode(err.to_string()),
        }
    }
}

/// How a non-square image is fitted to the model's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// Resize to a square ignoring the aspect ratio, as Hugging Face's BLIP processor does.
    #[default]
    Stretch,
    /// Take the largest centred square first, then resize it.
    Crop,
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgb8 {
    /// Builds an image after checking it with [`Rgb8::validate`].
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        let image = Self { width, height, data };
        image.validate()?;
        Ok(image)
    }

    /// Checks that the image is non-empty, within [`MAX_SIDE`] and [`MAX_PIXELS`], and that
    /// `data` holds exactly `width * height * 3` bytes. The fields are public, so every
    /// function here re-checks before indexing.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        check_dimensions(self.width, self.height)?;
        check_buffer(self.width, self.height, 3, self.data.len())
    }

    fn row_bytes(&self) -> usize {
        self.width as usize * 3
    }
}

/// Decode PNG/JPEG/WebP/GIF (first frame) from bytes and convert to RGB as PIL's
/// `convert("RGB")` does: alpha dropped (not composited), grey replicated, palette expanded.
///
/// Size limits are checked from the header before any pixel buffer is allocated, so a
/// decompression bomb is an error rather than an allocation.
pub fn decode_image(bytes: &[u8]) -> Result<Rgb8, PreprocessError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| PreprocessError::Decode(err.to_string()))?;
    reader.limits(decoder_limits());
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_has_end(bytes) {
        // The JPEG decoder fills a cut-off scan with grey and succeeds; PIL (and so Hugging Face)
        // refuses such a file, and a half-grey photo would be described as something it is not.
        return Err(PreprocessError::Decode(
            "the JPEG file is truncated (no end-of-image marker after its scan)".into(),
        ));
    }
    let decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    // `ImageReader::decode` would make this check; `from_decoder` does not.
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(PreprocessError::TooLarge(format!(
            "decoding {width}x{height} needs {} bytes, over the {MAX_DECODE_BYTES}-byte limit",
            decoder.total_bytes()
        )));
    }
    let image = DynamicImage::from_decoder(decoder)?;
    Ok(rgb_like_pil(image))
}

/// Raw RGBA camera frame (e.g. canvas `ImageData`) → RGB, alpha dropped.
pub fn rgb_from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Rgb8, PreprocessError> {
    check_dimensions(width, height)?;
    check_buffer(width, height, 4, rgba.len())?;
    let data = rgba.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
    Ok(Rgb8 { width, height, data })
}

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` on an RGB uint8 image, bit-exact
/// (Pillow 13 `Resample.c`, no `reducing_gap`).
pub fn resize_bicubic(img: &Rgb8, width: u32, height: u32) -> Result<Rgb8, PreprocessError> {
    img.validate()?;
    check_dimensions(width, height)?;
    // Each pass rounds to uint8, so the order matters: Pillow 13 runs the vertical pass first
    // when the height shrinks by more than twice as many pixels as the width (12.x and older
    // always went horizontal first, so they differ from this on such images).
    let shrink_y = i64::from(img.height) - i64::from(height);
    let shrink_x = i64::from(img.width) - i64::from(width);
    let passes = if shrink_y > 0 && shrink_y > 2 * shrink_x {
        [(Axis::Vertical, height), (Axis::Horizontal, width)]
    } else {
        [(Axis::Horizontal, width), (Axis::Vertical, height)]
    };
    let mut current = Cow::Borrowed(img);
    for (axis, len) in passes {
        if axis.len(&current) != len {
            current = Cow::Owned(axis.resample(&current, len)?);
        }
    }
    Ok(current.into_owned())
}

/// Largest centred square (for [`ResizeMode::Crop`]); offsets are `floor((w - s) / 2)`.
///
/// An image that fails [`Rgb8::validate`] gives an empty 0x0 image, which every other
/// function here rejects.
pub fn center_crop_square(img: &Rgb8) -> Rgb8 {
    if img.validate().is_err() {
        return Rgb8 { width: 0, height: 0, data: Vec::new() };
    }
    let side = img.width.min(img.height);
    let left = ((img.width - side) / 2) as usize * 3;
    let top = ((img.height - side) / 2) as usize;
    let span = side as usize * 3;
    let data = img
        .data
        .chunks_exact(img.row_bytes())
        .skip(top)
        .take(side as usize)
        .flat_map(|row| &row[left..left + span])
        .copied()
        .collect();
    Rgb8 { width: side, height: side, data }
}

/// The whole pipeline: (crop if [`ResizeMode::Crop`]) → bicubic resize to `size`×`size` →
/// `x / 255` → `(x - mean) / std`. Returns CHW f32 of length `3 * size * size`.
pub fn pixel_values(img: &Rgb8, size: u32, mode: ResizeMode) -> Result<Vec<f32>, PreprocessError> {
    img.validate()?;
    let resized = match mode {
        ResizeMode::Stretch => resize_bicubic(img, size, size)?,
        ResizeMode::Crop => resize_bicubic(&center_crop_square(img), size, size)?,
    };
    normalize_chw(&resized)
}

fn decoder_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Walks a JPEG's marker segments to the first scan of the main image (skipping APPn segments,
/// whose EXIF thumbnails carry scans and end markers of their own), then looks for the
/// end-of-image marker after it. Inside entropy-coded data 0xFF is always stuffed, so the marker
/// cannot appear by chance.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let mut pos = 2; // after SOI
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            return false;
        }
        let marker = bytes[pos + 1];
        match marker {
            // Fill bytes, and markers without a length.
            0xFF => pos += 1,
            0x01 | 0xD0..=0xD7 => pos += 2,
            0xD9 => return false, // end before any scan
            _ => {
                let len = u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize;
                if marker == 0xDA {
                    return bytes[pos + 2..].windows(2).any(|w| w == [0xFF, 0xD9]);
                }
                pos += 2 + len;
            }
        }
    }
    false
}

fn check_dimensions(width: u32, height: u32) -> Result<(), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(PreprocessError::TooLarge(format!(
            "{width}x{height}: at most {MAX_SIDE} per side and {MAX_PIXELS} pixels are accepted"
        )));
    }
    Ok(())
}

fn check_buffer(width: u32, height: u32, channels: u64, len: usize) -> Result<(), PreprocessError> {
    let expected = u64::from(width) * u64::from(height) * channels;
    let actual = len as u64;
    if actual != expected {
        return Err(PreprocessError::BufferLength { width, height, expected, actual });
    }
    Ok(())
}

/// A filled buffer whose allocation failure is an error: in wasm a failed `vec!` aborts.
fn try_filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, PreprocessError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| PreprocessError::TooLarge(format!("cannot allocate {len} elements")))?;
    buf.resize(len, value);
    Ok(buf)
}

fn rgb_like_pil(image: DynamicImage) -> Rgb8 {
    let (width, height) = (image.width(), image.height());
    let data = match image {
        // PIL unpacks 16-bit PNG colour and grey+alpha by keeping the high byte of each sample
        // (the image crate would round v / 257 instead).
        DynamicImage::ImageRgb16(buf) => buf.pixels().flat_map(|p| p.0.map(high_byte)).collect(),
        DynamicImage::ImageRgba16(buf) => buf.pixels().flat_map(|p| [p[0], p[1], p[2]].map(high_byte)).collect(),
        DynamicImage::ImageLumaA16(buf) => buf.pixels().flat_map(|p| [high_byte(p[0]); 3]).collect(),
        // PIL opens 16-bit grey as mode "I;16", whose RGB conversion clips at 255 instead of scaling.
        DynamicImage::ImageLuma16(buf) => buf.pixels().flat_map(|p| [p[0].min(255) as u8; 3]).collect(),
        // 8-bit images convert as PIL does: alpha dropped, grey replicated.
        other => other.into_rgb8().into_raw(),
    };
    Rgb8 { width, height, data }
}

fn high_byte(sample: u16) -> u8 {
    (sample >> 8) as u8
}

/// transformers rescales in float64, casts to float32, then normalises in float32.
fn normalize_chw(img: &Rgb8) -> Result<Vec<f32>, PreprocessError> {
    let plane = img.data.len() / 3;
    let mut out = try_filled(img.data.len(), 0.0f32)?;
    let channels = out.chunks_exact_mut(plane.max(1)).zip(CLIP_MEAN.iter().zip(&CLIP_STD));
    for (c, (dst, (&mean, &std))) in channels.enumerate() {
        for (value, px) in dst.iter_mut().zip(img.data.chunks_exact(3)) {
            let x = (f64::from(px[c]) * RESCALE_FACTOR) as f32;
            *value = (x - mean) / std;
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Axis {
    Horizontal,
    Vertical,
}

impl Axis {
    fn len(self, img: &Rgb8) -> u32 {
        match self {
            Self::Horizontal => img.width,
            Self::Vertical => img.height,
        }
    }

    fn resample(self, img: &Rgb8, len: u32) -> Result<Rgb8, PreprocessError> {
        let taps = filter_taps(self.len(img), len);
        match self {
            Self::Horizontal => horizontal_pass(img, &taps),
            Self::Vertical => vertical_pass(img, &taps),
        }
    }
}

/// The source window and fixed-point weights of one output pixel.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bicubic filter over the
/// whole source (box `0..in_len`).
fn filter_taps(in_len: u32, out_len: u32) -> Vec<Taps> {
    // Pillow takes the box width as a C float before widening it.
    let scale = f64::from(in_len as f32) / f64::from(out_len);
    // When downsampling the kernel is stretched to cover every source pixel.
    let filter_scale = scale.max(1.0);
    let support = BICUBIC_SUPPORT * filter_scale;
    let inv_filter_scale = 1.0 / filter_scale;
    (0..out_len)
        .map(|i| {
            let center = (f64::from(i) + 0.5) * scale;
            // `as` truncates toward zero, like the C `(int)` casts it mirrors.
            let first = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(i64::from(in_len));
            let raw: Vec<f64> = (first..end).map(|x| bicubic((x as f64 - center + 0.5) * inv_filter_scale)).collect();
            let total = raw.iter().fold(0.0, |sum, w| sum + w);
            let weights = raw.iter().map(|&w| to_fixed(if total != 0.0 { w / total } else { w })).collect();
            Taps { start: first as usize, weights }
        })
        .collect()
}

/// Keys' cubic convolution kernel with a = -0.5, written in Pillow's operation order.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn to_fixed(weight: f64) -> i32 {
    let scaled = weight * f64::from(1u32 << PRECISION_BITS);
    // Pillow rounds half away from zero by hand because the (int) cast truncates.
    (if weight < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
}

/// Start value of every fixed-point sum: adds one half so that the final shift rounds.
const ROUND_HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Pillow's `clip8`: back from fixed point, saturating to 0..=255.
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

fn horizontal_pass(img: &Rgb8, taps: &[Taps]) -> Result<Rgb8, PreprocessError> {
    let out_row = taps.len() * 3;
    let mut data = try_filled(out_row * img.height as usize, 0u8)?;
    for (src, dst) in img.data.chunks_exact(img.row_bytes()).zip(data.chunks_exact_mut(out_row)) {
        for (tap, px) in taps.iter().zip(dst.chunks_exact_mut(3)) {
            let window = src.chunks_exact(3).skip(tap.start);
            let mut acc = [ROUND_HALF; 3];
            for (&w, s) in tap.weights.iter().zip(window) {
                for (a, &v) in acc.iter_mut().zip(s) {
                    *a += i64::from(w) * i64::from(v);
                }
            }
            for (out, a) in px.iter_mut().zip(acc) {
                *out = clip8(a);
            }
        }
    }
    Ok(Rgb8 { width: taps.len() as u32, height: img.height, data })
}

fn vertical_pass(img: &Rgb8, taps: &[Taps]) -> Result<Rgb8, PreprocessError> {
    let row = img.row_bytes();
    let mut data = try_filled(row * taps.len(), 0u8)?;
    // Integer sums are exact, so accumulating whole rows gives Pillow's per-pixel result.
    let mut acc = try_filled(row, ROUND_HALF)?;
    for (tap, dst) in taps.iter().zip(data.chunks_exact_mut(row)) {
        acc.fill(ROUND_HALF);
        let rows = img.data.chunks_exact(row).skip(tap.start);
        for (&w, src) in tap.weights.iter().zip(rows) {
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += i64::from(w) * i64::from(v);
            }
        }
        for (out, &a) in dst.iter_mut().zip(&acc) {
            *out = clip8(a);
        }
    }
    Ok(Rgb8 { width: img.width, height: taps.len() as u32, data })
}
