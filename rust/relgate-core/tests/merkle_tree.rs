//! merkle::Tree (levels kept) against the one-shot functions of merkle, on every size up
//! to 300 and random prefixes, and on the RFC 6962 / Certificate Transparency vectors.

use proptest::prelude::*;
use relgate_core::merkle::{self, Hash, HashAlgo, Tree};

fn leaves(algo: HashAlgo, n: usize, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| algo.leaf_hash(&(i as u64 ^ salt).to_le_bytes()))
        .collect()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn algo() -> impl Strategy<Value = HashAlgo> {
    prop::sample::select(vec![HashAlgo::Sha256, HashAlgo::Blake3])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_the_one_shot_functions(
        algo in algo(),
        n in 0usize..=300,
        salt in any::<u64>(),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 4),
    ) {
        let l = leaves(algo, n, salt);
        let tree = Tree::new(algo, l.clone());
        prop_assert_eq!(tree.size(), n);
        prop_assert_eq!(tree.root(), merkle::root(algo, &l));
        for (a, b) in picks {
            // A prefix size m in 0..=n, an older size o in 0..=m, an index i < m.
            let m = a.index(n + 1);
            let o = b.index(m + 1);
            prop_assert_eq!(tree.prefix_root(m).unwrap(), merkle::root(algo, &l[..m]));
            prop_assert_eq!(
                tree.consistency_proof(o, m).unwrap(),
                merkle::consistency_proof(algo, &l[..m], o).unwrap()
            );
            if m > 0 {
                let i = b.index(m);
                prop_assert_eq!(
                    tree.inclusion_proof(i, m).unwrap(),
                    merkle::inclusion_proof(algo, &l[..m], i).unwrap()
                );
            }
        }
    }
}

#[test]
fn every_proof_of_every_small_tree() {
    for algo in [HashAlgo::Sha256, HashAlgo::Blake3] {
        for n in 0..=70usize {
            let l = leaves(algo, n, 7);
            let tree = Tree::new(algo, l.clone());
            let all = tree.inclusion_proofs();
            assert_eq!(all.len(), n);
            let joined: Vec<Vec<u8>> = all.iter().map(|p| p.concat()).collect();
            assert_eq!(tree.inclusion_proofs_joined(), joined);
            for (i, p) in all.iter().enumerate() {
                assert_eq!(
                    *p,
                    merkle::inclusion_proof(algo, &l, i).unwrap(),
                    "n={n} i={i}"
                );
                assert_eq!(tree.inclusion_proof(i, n).unwrap(), *p);
                assert!(merkle::verify_inclusion(
                    algo,
                    &l[i],
                    i as u64,
                    n as u64,
                    p,
                    &tree.root()
                ));
            }
            for m in 0..=n {
                let old = tree.prefix_root(m).unwrap();
                for o in 0..=m {
                    let p = tree.consistency_proof(o, m).unwrap();
                    let older = tree.prefix_root(o).unwrap();
                    assert!(merkle::verify_consistency(
                        algo, o as u64, m as u64, &older, &old, &p
                    ));
                }
            }
        }
    }
}

#[test]
fn large_trees_build_in_parallel_to_the_same_root() {
    let l = leaves(HashAlgo::Sha256, 100_003, 1);
    let tree = Tree::new(HashAlgo::Sha256, l.clone());
    assert_eq!(tree.root(), merkle::root(HashAlgo::Sha256, &l));
    assert_eq!(
        tree.prefix_root(65_536).unwrap(),
        merkle::root(HashAlgo::Sha256, &l[..65_536])
    );
    assert_eq!(
        tree.inclusion_proof(99_999, 100_003).unwrap(),
        merkle::inclusion_proof(HashAlgo::Sha256, &l, 99_999).unwrap()
    );
}

#[test]
fn out_of_range_arguments_are_errors() {
    let tree = Tree::new(HashAlgo::Sha256, leaves(HashAlgo::Sha256, 5, 0));
    assert!(tree.prefix_root(6).is_err());
    assert!(tree.inclusion_proof(5, 5).is_err());
    assert!(tree.inclusion_proof(0, 6).is_err());
    assert!(tree.inclusion_proof(3, 3).is_err());
    assert!(tree.consistency_proof(4, 3).is_err());
    assert!(tree.consistency_proof(1, 6).is_err());
    let empty = Tree::new(HashAlgo::Sha256, Vec::new());
    assert_eq!(empty.root(), HashAlgo::Sha256.empty_root());
    assert_eq!(empty.prefix_root(0).unwrap(), HashAlgo::Sha256.empty_root());
    assert!(empty.inclusion_proofs().is_empty());
    assert_eq!(empty.consistency_proof(0, 0).unwrap(), Vec::<Hash>::new());
}

#[test]
fn certificate_transparency_vectors() {
    // google/certificate-transparency merkle_tree_test.cc: the 8 leaves and the MTH of
    // each prefix, all from one tree.
    let inputs: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let algo = HashAlgo::Sha256;
    let tree = Tree::new(algo, inputs.iter().map(|d| algo.leaf_hash(d)).collect());
    for (n, want) in roots.iter().enumerate() {
        assert_eq!(
            hex::encode(tree.prefix_root(n + 1).unwrap()),
            *want,
            "size {}",
            n + 1
        );
    }
    assert_eq!(hex::encode(tree.root()), roots[7]);
}

#[test]
fn rfc6962_example_proof_shapes() {
    // RFC 6962 section 2.1.3: the 7-leaf tree d0..d6, as a prefix of a 9-leaf tree.
    let algo = HashAlgo::Sha256;
    let l = leaves(algo, 9, 0);
    let tree = Tree::new(algo, l.clone());
    let h = |a: &Hash, b: &Hash| algo.node_hash(a, b);
    let (a, b, c, d, e, f, j) = (l[0], l[1], l[2], l[3], l[4], l[5], l[6]);
    let (g, hh, i, k) = (h(&a, &b), h(&c, &d), h(&e, &f), j);
    let (kk, ll) = (h(&g, &hh), h(&i, &k));
    assert_eq!(tree.prefix_root(7).unwrap(), h(&kk, &ll));
    // Audit paths: b is [a, h, l]; d is [c, g, l]; e is [f, j, k].
    assert_eq!(tree.inclusion_proof(1, 7).unwrap(), vec![a, hh, ll]);
    assert_eq!(tree.inclusion_proof(3, 7).unwrap(), vec![c, g, ll]);
    assert_eq!(tree.inclusion_proof(4, 7).unwrap(), vec![f, j, kk]);
    // Consistency: 3 -> 7 is [c, d, g, l]; 4 -> 7 is [l]; 6 -> 7 is [i, j, k].
    assert_eq!(tree.consistency_proof(3, 7).unwrap(), vec![c, d, g, ll]);
    assert_eq!(tree.consistency_proof(4, 7).unwrap(), vec![ll]);
    assert_eq!(tree.consistency_proof(6, 7).unwrap(), vec![i, j, kk]);
}
