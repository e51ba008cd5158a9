//! What needs the module's private parts: the environment switch and the shape checks. The
//! products themselves are checked against their definition in tests/cpu_kernels.rs, which also
//! runs in wasm.

use super::*;

#[test]
fn refuses_shapes_it_cannot_take() {
    for path in Path::ALL {
        assert!(matmul(path, &[0.0; 20], 1, 20, Weights::Q8_0(&[0; 34]), 1, None).is_none());
        assert!(matmul(path, &[0.0; 32], 1, 32, Weights::Q8_0(&[0; 33]), 1, None).is_none());
        assert!(matmul(path, &[0.0; 32], 1, 32, Weights::Q8_0(&[0; 34]), 1, Some(&[0.0; 2])).is_none());
        assert!(matmul(path, &[0.0; 32], 1, 32, Weights::Q4_0(&[0; 34]), 1, None).is_none());
        // Q4_K rows are whole 256-value blocks.
        assert!(matmul(path, &[0.0; 128], 1, 128, Weights::Q4K(&[0; 72]), 1, None).is_none());
        assert!(matmul(path, &[0.0; 256], 1, 256, Weights::Q4K(&[0; 145]), 1, None).is_none());
    }
}

#[test]
fn the_switch_names_paths_and_refuses_what_cannot_run() {
    assert_eq!(Path::parse(""), Ok(None));
    assert_eq!(Path::parse("candle"), Ok(Some(None)));
    assert_eq!(Path::parse(" Scalar "), Ok(Some(Some(Path::Scalar))));
    assert!(Path::parse("sse9").is_err());
    for path in Path::ALL {
        assert_eq!(Path::parse(path.name()).is_ok(), path.runs_here(), "{}", path.name());
    }
}
