//! Preprocessing against Hugging Face's BLIP processor outputs and Pillow's resize, plus the
//! error paths that must never panic.

use std::io::Cursor;

use edgecap::preprocess::*;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

mod common;

use common::read as read_fixture;

fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read_fixture(rel)).expect("fixture json")
}

/// `pixel_values` from a reference file, and the image (relative to fixtures/) it was made from.
fn reference_pixel_values(reference: &str) -> (String, Vec<usize>, Vec<f32>) {
    let meta = read_json(&format!("reference/{reference}.json"));
    let image = meta["image"].as_str().expect("reference names its image").to_owned();
    let bytes = read_fixture(&format!("reference/{reference}.safetensors"));
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let view = tensors.tensor("pixel_values").expect("pixel_values tensor");
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (image, view.shape().to_vec(), values)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check_against_hf(reference: &str, tolerance: f32) {
    let (image, shape, expected) = reference_pixel_values(reference);
    assert_eq!(shape[..2], [1, 3], "{reference}: pixel_values shape {shape:?}");
    let size = shape[3] as u32;
    let img = decode_image(&read_fixture(&image)).expect("decode fixture image");
    let actual = pixel_values(&img, size, ResizeMode::Stretch).expect("pixel_values");
    let diff = max_abs_diff(&actual, &expected);
    assert!(diff <= tolerance, "{reference} ({image}): max abs diff {diff:e}");
}

#[test]
fn matches_hf_processor_with_resize() {
    check_against_hf("tiny_ref", 1e-6);
}

#[test]
fn matches_hf_processor_without_resize_exactly() {
    check_against_hf("tiny_ref_64x64", 0.0);
}

#[test]
fn resize_matches_pillow_bit_for_bit() {
    let meta = read_json("preprocess/pil_resize.json");
    let blob = read_fixture("preprocess/pil_resize.bin");
    let cases = meta["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10);
    let dims = |v: &serde_json::Value| -> (u32, u32) { (v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32) };
    let slice = |offset: &serde_json::Value, (w, h): (u32, u32)| -> Vec<u8> {
        let start = offset.as_u64().unwrap() as usize;
        blob[start..start + (w * h * 3) as usize].to_vec()
    };
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (src_dims, dst_dims) = (dims(&case["src"]), dims(&case["dst"]));
        let src = Rgb8::new(src_dims.0, src_dims.1, slice(&case["src_offset"], src_dims)).unwrap();
        let expected = slice(&case["dst_offset"], dst_dims);
        let out = resize_bicubic(&src, dst_dims.0, dst_dims.1).unwrap();
        assert_eq!((out.width, out.height), dst_dims, "{name}");
        let mismatches = out.data.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(mismatches, 0, "{name}: {mismatches} bytes differ from Pillow {}", meta["pillow"]);
    }
}

#[test]
fn crop_mode_resizes_the_centred_square() {
    let img = decode_image(&read_fixture("images/synthetic_160x120.png")).unwrap();
    let square = center_crop_square(&img);
    assert_eq!((square.width, square.height), (120, 120));
    let cropped = pixel_values(&img, 64, ResizeMode::Crop).unwrap();
    assert_eq!(cropped, pixel_values(&square, 64, ResizeMode::Stretch).unwrap());
    assert_ne!(cropped, pixel_values(&img, 64, ResizeMode::Stretch).unwrap());
}

#[test]
fn center_crop_offsets_round_down() {
    // 5x2: columns 1..3 survive; 2x5: rows 1..3 survive (floor((5 - 2) / 2) = 1).
    let wide = Rgb8::new(5, 2, (0..30).collect()).unwrap();
    let crop = center_crop_square(&wide);
    assert_eq!((crop.width, crop.height), (2, 2));
    assert_eq!(crop.data, [3, 4, 5, 6, 7, 8, 18, 19, 20, 21, 22, 23]);
    let tall = Rgb8::new(2, 5, (0..30).collect()).unwrap();
    assert_eq!(center_crop_square(&tall).data, (6..18).collect::<Vec<u8>>());
}

#[test]
fn pixel_values_layout_and_normalisation() {
    // A 1x1 image needs no resize, so each plane holds ((v / 255) - mean) / std for its channel.
    let img = Rgb8::new(1, 1, vec![0, 128, 255]).unwrap();
    let out = pixel_values(&img, 2, ResizeMode::Stretch).unwrap();
    assert_eq!(out.len(), 3 * 2 * 2);
    for (c, plane) in out.chunks_exact(4).enumerate() {
        let x = (f64::from(img.data[c]) / 255.0) as f32;
        let expected = (x - CLIP_MEAN[c]) / CLIP_STD[c];
        assert!(plane.iter().all(|&v| v == expected), "channel {c}: {plane:?} vs {expected}");
    }
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

#[test]
fn rgba_png_drops_alpha_without_compositing() {
    let rgba = ImageBuffer::from_raw(2, 1, vec![10, 20, 30, 0, 200, 100, 50, 128]).unwrap();
    let png = encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
    let img = decode_image(&png).unwrap();
    assert_eq!(img, Rgb8::new(2, 1, vec![10, 20, 30, 200, 100, 50]).unwrap());
}

#[test]
fn grey_images_are_replicated() {
    let grey: ImageBuffer<Luma<u8>, _> = ImageBuffer::from_raw(3, 1, vec![0, 77, 255]).unwrap();
    let png = encode(DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Png);
    assert_eq!(decode_image(&png).unwrap().data, [0, 0, 0, 77, 77, 77, 255, 255, 255]);
    let jpeg = decode_image(&encode(DynamicImage::ImageLuma8(grey), ImageFormat::Jpeg)).unwrap();
    assert!(jpeg.data.chunks_exact(3).all(|px| px[0] == px[1] && px[1] == px[2]));
    let grey_alpha: ImageBuffer<LumaA<u8>, _> = ImageBuffer::from_raw(2, 1, vec![9, 0, 250, 255]).unwrap();
    let png = encode(DynamicImage::ImageLumaA8(grey_alpha), ImageFormat::Png);
    assert_eq!(decode_image(&png).unwrap().data, [9, 9, 9, 250, 250, 250]);
}

#[test]
fn gif_palette_is_expanded() {
    let colours = vec![255, 0, 0, 255, 0, 128, 255, 255, 7, 7, 7, 255, 255, 0, 0, 255];
    let frame: ImageBuffer<Rgba<u8>, _> = ImageBuffer::from_raw(2, 2, colours).unwrap();
    let img = decode_image(&encode(DynamicImage::ImageRgba8(frame), ImageFormat::Gif)).unwrap();
    assert_eq!(img.data, [255, 0, 0, 0, 128, 255, 7, 7, 7, 255, 0, 0]);
}

#[test]
fn sixteen_bit_png_converts_like_pil() {
    // Pillow 13 reads 16-bit colour by its high byte and clips 16-bit grey ("I;16") at 255.
    let samples = [0u16, 100, 255, 256, 1000, 0x8080, 0xFF7F, 0xFFFF];
    let high: Vec<u8> = samples.iter().map(|v| (v >> 8) as u8).collect();
    let clipped: Vec<u8> = samples.iter().map(|&v| v.min(255) as u8).collect();
    let n = samples.len() as u32;

    let rgb: ImageBuffer<Rgb<u16>, _> =
        ImageBuffer::from_raw(n, 1, samples.iter().flat_map(|&v| [v, !v, v]).collect()).unwrap();
    let img = decode_image(&encode(DynamicImage::ImageRgb16(rgb), ImageFormat::Png)).unwrap();
    let want: Vec<u8> = high.iter().flat_map(|&h| [h, !h, h]).collect();
    assert_eq!(img.data, want);

    let rgba: ImageBuffer<Rgba<u16>, _> =
        ImageBuffer::from_raw(n, 1, samples.iter().flat_map(|&v| [v, v, !v, 7]).collect()).unwrap();
    let img = decode_image(&encode(DynamicImage::ImageRgba16(rgba), ImageFormat::Png)).unwrap();
    let want: Vec<u8> = high.iter().flat_map(|&h| [h, h, !h]).collect();
    assert_eq!(img.data, want);

    let grey_alpha: ImageBuffer<LumaA<u16>, _> =
        ImageBuffer::from_raw(n, 1, samples.iter().flat_map(|&v| [v, 1234]).collect()).unwrap();
    let img = decode_image(&encode(DynamicImage::ImageLumaA16(grey_alpha), ImageFormat::Png)).unwrap();
    assert_eq!(img.data, high.iter().flat_map(|&h| [h; 3]).collect::<Vec<u8>>());

    let grey: ImageBuffer<Luma<u16>, _> = ImageBuffer::from_raw(n, 1, samples.to_vec()).unwrap();
    let img = decode_image(&encode(DynamicImage::ImageLuma16(grey), ImageFormat::Png)).unwrap();
    assert_eq!(img.data, clipped.iter().flat_map(|&c| [c; 3]).collect::<Vec<u8>>());
}

#[test]
fn rgba_frames_drop_alpha() {
    let rgba = [1, 2, 3, 4, 5, 6, 7, 0, 250, 251, 252, 255];
    let img = rgb_from_rgba(3, 1, &rgba).unwrap();
    assert_eq!(img, Rgb8::new(3, 1, vec![1, 2, 3, 5, 6, 7, 250, 251, 252]).unwrap());
}

#[test]
fn rgba_frames_are_validated() {
    assert!(matches!(rgb_from_rgba(2, 2, &[0; 15]), Err(PreprocessError::BufferLength { .. })));
    assert!(matches!(rgb_from_rgba(2, 2, &[0; 12]), Err(PreprocessError::BufferLength { .. })));
    assert!(matches!(rgb_from_rgba(0, 2, &[]), Err(PreprocessError::Empty { .. })));
    assert!(matches!(rgb_from_rgba(2, 0, &[]), Err(PreprocessError::Empty { .. })));
    assert!(matches!(rgb_from_rgba(100_000, 1, &[]), Err(PreprocessError::TooLarge(_))));
    assert!(matches!(rgb_from_rgba(20_000, 20_000, &[]), Err(PreprocessError::TooLarge(_))));
    assert!(matches!(rgb_from_rgba(u32::MAX, u32::MAX, &[]), Err(PreprocessError::TooLarge(_))));
}

#[test]
fn inconsistent_images_are_errors() {
    let short = Rgb8 { width: 4, height: 4, data: vec![0; 47] };
    let empty = Rgb8 { width: 0, height: 3, data: Vec::new() };
    let huge = Rgb8 { width: u32::MAX, height: u32::MAX, data: Vec::new() };
    for img in [&short, &empty, &huge] {
        assert!(img.validate().is_err());
        assert!(resize_bicubic(img, 8, 8).is_err());
        assert!(pixel_values(img, 8, ResizeMode::Stretch).is_err());
        assert!(pixel_values(img, 8, ResizeMode::Crop).is_err());
        let crop = center_crop_square(img);
        assert_eq!((crop.width, crop.height), (0, 0));
    }
    let ok = Rgb8::new(2, 2, vec![0; 12]).unwrap();
    assert!(matches!(resize_bicubic(&ok, 0, 5), Err(PreprocessError::Empty { .. })));
    assert!(matches!(pixel_values(&ok, 0, ResizeMode::Stretch), Err(PreprocessError::Empty { .. })));
    assert!(matches!(resize_bicubic(&ok, 70_000, 1), Err(PreprocessError::TooLarge(_))));
    assert!(matches!(pixel_values(&ok, 20_000, ResizeMode::Crop), Err(PreprocessError::TooLarge(_))));
}

#[test]
fn garbage_and_empty_bytes_are_errors() {
    assert!(matches!(decode_image(&[]), Err(PreprocessError::Decode(_))));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(matches!(decode_image(&noise), Err(PreprocessError::Decode(_))));
    assert!(decode_image(b"\x89PNG\r\n\x1a\n").is_err());
    assert!(decode_image(b"GIF89a").is_err());
    assert!(decode_image(&[0xFF, 0xD8, 0xFF]).is_err());
    assert!(decode_image(b"RIFF\0\0\0\0WEBPVP8 ").is_err());
}

#[test]
fn truncated_png_is_an_error_at_every_length() {
    let png = read_fixture("images/synthetic_64x64.png");
    for len in 0..png.len() - 12 {
        assert!(decode_image(&png[..len]).is_err(), "truncated to {len} bytes decoded");
    }
}

#[test]
fn corrupted_images_do_not_panic() {
    // Outcomes vary (some flips only hit ancillary bytes); what matters is returning at all.
    let png = read_fixture("images/synthetic_64x64.png");
    let jpeg = encode(
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(16, 16, |x, y| Rgb([x as u8 * 16, y as u8 * 16, 99]))),
        ImageFormat::Jpeg,
    );
    for source in [png, jpeg] {
        for i in (0..source.len()).step_by(7) {
            let mut bytes = source.clone();
            bytes[i] ^= 0x5A;
            let _ = decode_image(&bytes);
        }
    }
}

/// A PNG whose header claims `width`x`height` RGB pixels, followed by the start of a
/// zlib stream: decoding it for real would allocate width * height * 3 bytes.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut idat = vec![0x78, 0x01, 0x00, 0x00, 0x04, 0xFF, 0xFB];
    idat.extend_from_slice(&[0; 1024]);
    common::png_claiming(width, height, &idat)
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    // Over MAX_SIDE (the decoder's own dimension limit) and over MAX_PIXELS alone.
    for (w, h) in [(100_000, 100_000), (20_000, 20_000), (65_535, 1_600)] {
        assert!(u64::from(w) * u64::from(h) > MAX_PIXELS);
        let err = decode_image(&png_bomb(w, h)).expect_err("bomb decoded");
        assert!(matches!(err, PreprocessError::TooLarge(_)), "{w}x{h}: {err}");
    }
    // The same construction under the limits gets past the size checks and fails on the data.
    assert!(matches!(decode_image(&png_bomb(64, 64)), Err(PreprocessError::Decode(_))));
}

#[test]
fn zero_size_png_is_an_error() {
    assert!(decode_image(&png_bomb(0, 10)).is_err());
    assert!(decode_image(&png_bomb(10, 0)).is_err());
}
