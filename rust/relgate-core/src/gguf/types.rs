//! The ggml tensor types a GGUF file may use: id, name, block size, bytes per block.
//!
//! Source: gguf-py 0.19.0, `gguf/constants.py` (`GGMLQuantizationType` for ids and names,
//! `GGML_QUANT_SIZES` for the sizes), cross-checked against llama.cpp
//! `ggml/src/ggml.c` `type_traits` (ggml-org/llama.cpp@00bdaa10): the same ids, with ids 4
//! and 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38 (IQ4_NL_4_4,
//! IQ4_NL_4_8, IQ4_NL_8_8) deprecated or removed (block size 0 there) and refused here.
//!
//! Names are gguf-py's (upper case, what `gguf-dump` prints), not ggml's own
//! `ggml_type_name` (lower case, e.g. `q4_K`): the attestation leaf carries them, so they
//! are part of the scheme and must never change for a given id.

/// One ggml tensor type.
#[derive(Debug, PartialEq, Eq)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    /// Elements per block; the first dimension (ne\[0\]) must be a multiple of it.
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
}

const QK_K: u64 = 256;

const fn t(id: u32, name: &'static str, block_size: u64, type_size: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
    }
}

/// Every type this parser accepts, by id.
pub const GGML_TYPES: [GgmlType; 34] = [
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 2 + 16),
    t(3, "Q4_1", 32, 2 + 2 + 16),
    t(6, "Q5_0", 32, 2 + 4 + 16),
    t(7, "Q5_1", 32, 2 + 2 + 4 + 16),
    t(8, "Q8_0", 32, 2 + 32),
    t(9, "Q8_1", 32, 4 + 4 + 32),
    t(10, "Q2_K", 256, 2 + 2 + QK_K / 16 + QK_K / 4),
    t(11, "Q3_K", 256, 2 + QK_K / 4 + QK_K / 8 + 12),
    t(12, "Q4_K", 256, 2 + 2 + QK_K / 2 + 12),
    t(13, "Q5_K", 256, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
    t(14, "Q6_K", 256, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
    t(15, "Q8_K", 256, 4 + QK_K + QK_K / 8),
    t(16, "IQ2_XXS", 256, 2 + QK_K / 4),
    t(17, "IQ2_XS", 256, 2 + QK_K / 4 + QK_K / 32),
    t(18, "IQ3_XXS", 256, 2 + QK_K / 4 + QK_K / 8),
    t(19, "IQ1_S", 256, 2 + QK_K / 8 + QK_K / 16),
    t(20, "IQ4_NL", 32, 2 + 16),
    t(21, "IQ3_S", 256, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
    t(22, "IQ2_S", 256, 2 + QK_K / 4 + QK_K / 16),
    t(23, "IQ4_XS", 256, 2 + 2 + QK_K / 2 + QK_K / 64),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, QK_K / 8 + QK_K / 16 + QK_K / 32),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 2 + 4 * 13),
    t(35, "TQ2_0", 256, 2 + 64),
    t(39, "MXFP4", 32, 1 + 16),
    t(40, "NVFP4", 64, 4 + 32),
    t(41, "Q1_0", 128, 2 + 16),
];

/// The type with this id, if it is a current one.
pub fn ggml_type(id: u32) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.id == id)
}

/// The type with this name (as recorded in attestations).
pub fn ggml_type_by_name(name: &str) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_block_sizes_of_gguf_py() {
        // Spot values written out from GGML_QUANT_SIZES, so a slip in the formulas shows.
        let want: [(&str, u64, u64); 12] = [
            ("Q4_0", 32, 18),
            ("Q4_1", 32, 20),
            ("Q8_0", 32, 34),
            ("Q2_K", 256, 84),
            ("Q3_K", 256, 110),
            ("Q4_K", 256, 144),
            ("Q6_K", 256, 210),
            ("IQ2_XXS", 256, 66),
            ("IQ1_M", 256, 56),
            ("TQ1_0", 256, 54),
            ("MXFP4", 32, 17),
            ("NVFP4", 64, 36),
        ];
        for (name, bs, ts) in want {
            let t = ggml_type_by_name(name).unwrap();
            assert_eq!((t.block_size, t.type_size), (bs, ts), "{name}");
        }
    }

    #[test]
    fn ids_and_names_are_unique_and_removed_ids_unknown() {
        for (i, a) in GGML_TYPES.iter().enumerate() {
            for b in &GGML_TYPES[i + 1..] {
                assert!(a.id != b.id && a.name != b.name);
            }
            assert_eq!(ggml_type(a.id), Some(a));
            assert!(a.block_size > 0 && a.type_size > 0);
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 42, u32::MAX] {
            assert!(ggml_type(removed).is_none(), "{removed}");
        }
    }
}
