//! Tests of `parallel.rs`: the pool (sizes, fork), the serial threshold, and the row blocks of
//! every reduction (coverage, order, and the same bits on 1 thread and on a pool).

use super::*;

#[test]
fn row_blocks_cover_every_row_once_in_block_order() {
    for (n, rows) in [
        (0, 64),
        (1, 64),
        (64, 64),
        (65, 64),
        (3 * PAR_THRESHOLD + 17, 64),
        (1000, 1),
    ] {
        let (m, blocks) = (3, RowBlocks::new(n, rows));
        assert_eq!(blocks.count(), n.div_ceil(rows));
        let mut marks = vec![0usize; n * m];
        let mut parts = vec![usize::MAX; 2 * blocks.count()];
        blocks.for_each_with(&mut marks, m, &mut parts, 2, m, |r, out, part| {
            assert_eq!(out.len(), r.len() * m);
            for (i, row) in r.clone().zip(out.chunks_exact_mut(m)) {
                row.iter_mut().for_each(|v| *v += i + 1);
            }
            part.copy_from_slice(&[r.start, r.end]);
        });
        assert!(marks
            .chunks_exact(m)
            .enumerate()
            .all(|(i, row)| row.iter().all(|&v| v == i + 1)));
        let mut next = 0;
        for (b, part) in parts.chunks_exact(2).enumerate() {
            assert_eq!((part[0], part[1]), (blocks.rows_of(b).start, blocks.rows_of(b).end));
            assert_eq!(
                part[0],
                next,
                "block {b} starts where block {} ended",
                b.wrapping_sub(1)
            );
            assert!(part[1] - part[0] == rows || (part[1] == n && part[1] > part[0]));
            next = part[1];
        }
        assert_eq!(next, n);
        assert!(blocks.rows_of(blocks.count()).is_empty());
    }
}

/// Column sums and a scalar sum over row blocks: the same bits on one thread (here forced by
/// a team member's guard, as inside a team) and on a pool of 4 threads, which must really
/// have run blocks on several threads; the fold is block 0, then the others in order, and
/// the sum `((0 + s_0) + s_1) + …` also across its groups of `SUM_GROUP` blocks.
#[test]
fn row_block_reductions_are_bit_identical_for_1_and_several_threads() {
    let (n, m) = (4 * PAR_THRESHOLD / 64 + 7, 64);
    let (blocks, small) = (RowBlocks::new(n, 64), RowBlocks::new(n, 3));
    assert!(small.count() > 2 * SUM_GROUP);
    let x: Vec<f64> = crate::kernels::test_data::uniform(n * m, 5)
        .iter()
        .map(|v| v * 1e3)
        .collect();
    // One partial row per block plus the index of the pool thread that computed it (-1: none).
    let stride = m + 1;
    let run = |parts: &mut [f64], sums: &mut [f64], grad: &mut [f64]| -> f64 {
        blocks.for_each(parts, stride, m, |r, p| {
            p[..m].fill(0.0);
            for row in x[r.start * m..r.end * m].chunks_exact(m) {
                p.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
            }
            p[m] = rayon::current_thread_index().map_or(-1.0, |t| t as f64);
            // Long enough blocks that idle pool threads wake up and take some.
            std::thread::sleep(std::time::Duration::from_micros(500));
        });
        fold_blocks(parts, stride, sums);
        small.sum(grad, m, m, |r, g| {
            g.iter_mut()
                .zip(&x[r.start * m..r.end * m])
                .for_each(|(g, &v)| *g = 2.0 * v);
            x[r.start * m..r.end * m].iter().fold(0.0, |a, &v| a + v * v)
        })
    };
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let (mut parts, mut want, mut grad1) = (vec![0.0; blocks.count() * stride], vec![0.0; m], vec![0.0; n * m]);
    let total1 = {
        let _serial = TeamMember::enter();
        run(&mut parts, &mut want, &mut grad1)
    };
    assert!(
        parts.chunks_exact(stride).all(|p| p[m] == -1.0),
        "the team guard keeps blocks serial"
    );
    let mut fold = parts[..m].to_vec();
    for p in parts.chunks_exact(stride).skip(1) {
        fold.iter_mut().zip(p).for_each(|(a, &v)| *a += v);
    }
    assert_eq!(bits(&fold), bits(&want));
    let total = (0..small.count()).fold(0.0, |a, b| {
        a + x[small.rows_of(b).start * m..small.rows_of(b).end * m]
            .iter()
            .fold(0.0, |a, &v| a + v * v)
    });
    assert_eq!(total.to_bits(), total1.to_bits());
    assert!(grad1.iter().zip(&x).all(|(&g, &v)| g == 2.0 * v));
    let prev = pool_size();
    let mut used_several = false;
    for _ in 0..20 {
        set_num_threads(4).unwrap();
        let (mut got, mut grad) = (vec![0.0; m], vec![0.0; n * m]);
        let total = run(&mut parts, &mut got, &mut grad);
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(total.to_bits(), total1.to_bits());
        assert_eq!(bits(&grad), bits(&grad1));
        let mut threads: Vec<u64> = parts.chunks_exact(stride).map(|p| p[m].to_bits()).collect();
        threads.sort_unstable();
        threads.dedup();
        used_several |= threads.len() > 1;
        if used_several {
            break;
        }
    }
    set_num_threads(prev).unwrap();
    assert!(used_several, "the blocks never ran on more than one thread");
}

#[test]
fn for_each_chunk_visits_every_element_once() {
    let mut v = vec![0u32; 200_001];
    for_each_chunk(&mut v, 1000, 1, |off, c| {
        for (j, x) in c.iter_mut().enumerate() {
            *x += (off + j) as u32;
        }
    });
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
}

#[test]
fn thread_counts_are_bounded() {
    assert!(set_num_threads(0).is_err());
    assert!(set_num_threads(MAX_THREADS + 1).is_err());
    assert!(set_num_threads(usize::MAX).is_err());
}

/// A child forked after the pool has run parallel work must get a working pool.
#[cfg(unix)]
#[test]
fn a_forked_child_gets_a_fresh_pool() {
    let sum = |n: u64| install(|| (0..n).into_par_iter().sum::<u64>());
    assert_eq!(sum(1_000_000), 499_999_500_000);
    // SAFETY: the child only runs Rust code of this crate and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = sum(1_000_000) == 499_999_500_000;
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // Poll with a deadline: a hung child fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if std::time::Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung in the thread pool");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

#[test]
fn threshold_keeps_small_work_serial() {
    assert_eq!(threads_for(10), 1);
    assert_eq!(threads_for(PAR_THRESHOLD), 1);
}
