#!/usr/bin/env perl
# Negative controls of the emulated kernel check: deliberately broken copies of csrc/kernels, generated at test time
# from the real sources (never committed), each of which one emulated build must reject.
#
#   negative_controls.pl list                      one line per control: NAME BUILD OP FILE SIGNATURE-REGEX
#   negative_controls.pl make NAME KERNELS OUTDIR  copy KERNELS/*.h, *.cuh and the control's .cu to OUTDIR, apply the
#                                                  mutation there (to the copy only), print the mutated .cu's path
#
# A mutation is an exact text substitution that must match exactly once: if the source changed so that the text is
# gone (or appears twice), `make` fails loudly instead of producing an unbroken "broken" kernel. Headers are copied
# next to the mutated .cu so that a mutated header (index_math.h, *_impl.h) shadows the real one for that one device
# translation unit only (a quoted #include searches the including file's directory first); the CPU twins, built from
# the real sources, stay correct, so the emulated CUDA run is compared against correct twins.
use strict;
use warnings;
use File::Basename qw(basename);

# name => [build that must reject it, op whose device object is rebuilt, file to mutate, old text, new text,
#          regex of the report that shows it was rejected for the right reason, why]
my @controls = (
  ['missing_barrier', 'tsan', 'select_frames', 'select_frames.cu',
   "      __syncthreads();  // warp_counts is rewritten by the next tile\n", "\n",
   'WARNING: ThreadSanitizer: data race',
   'threshold selection without the barrier that ends a tile: the next tile overwrites warp_counts while slower '
   . 'warps still read it'],
  ['divergent_warp_op', 'plain', 'ample_fuse_pool', 'ample_fuse_pool.cu',
   "    s = warp_sum(s);\n    if constexpr (LANES > 32) {", "    if (lane < 16) s = warp_sum(s);\n    if constexpr (LANES > 32) {",
   'cuda_emu: warp op',
   'the pool reduction shuffles over all 32 lanes but only lanes 0-15 call it'],
  ['undersized_shared', 'asan', 'ample_fuse_pool', 'ample_fuse_pool.cu',
   'sizeof(int32_t) * static_cast<size_t>(p.h + p.w);', 'sizeof(int32_t) * static_cast<size_t>(p.h + p.w - 1);',
   'ERROR: AddressSanitizer: heap-buffer-overflow',
   'the dynamic shared buffer of per-axis weights is one int short'],
  ['plane_off_by_one', 'asan', 'focal_gather', 'focal_gather.cu',
   'i < nvec; i += stride)', 'i <= nvec; i += stride)',
   'ERROR: AddressSanitizer: heap-buffer-overflow',
   'the grid-stride loop over a frame plane runs one vector past the plane'],
  ['tsm_wrong_neighbour', 'plain', 'focal_gather', 'index_math.h',
   'return e < seg1 ? s.next : (e < seg2 ? s.prev : s.self);', 'return e < seg1 ? s.prev : (e < seg2 ? s.next : s.self);',
   'FAIL cuda focal_gather',
   'the TSM shift reads channels [0, C/8) from frame t-1 and [C/8, C/4) from t+1 (swapped neighbours)'],
  ['gemm_missing_barrier', 'tsan', 'gather_conv1x1', 'conv1x1_gemm.cuh',
   "      __syncthreads();  // As / Bs are rewritten by the next chunk\n", "\n",
   'WARNING: ThreadSanitizer: data race',
   'the fused GEMM without the barrier that ends a K chunk: the next chunk overwrites the shared A/B tiles while '
   . 'other warps still load fragments from them'],
  ['wmma_divergent', 'plain', 'conv1x1_scatter', 'conv1x1_gemm.cuh',
   'for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j]',
   'if (tid % 32 < 16) for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j]',
   'cuda_emu: (warp op|wmma)',
   'half of each warp skips the B-fragment loads (a warp-collective wmma operation called by lanes 0-15 only)'],
  ['gemm_tsm_fold_per_tile', 'plain', 'gather_conv1x1', 'gather_conv1x1_impl.h',
   'const int64_t ch = g * kdim() + c, fold = p.C / 8;',
   'const int64_t ch = g * kdim() + c, fold = p.C / 8 < 16 ? 16 : p.C / 8;',
   'FAIL cuda gather_conv1x1',
   'the fused gather assumes a TSM fold of at least 16 channels (one source per 16-channel fragment row block): '
   . 'wrong for C_in = 64, whose fold is 8'],
  ['chain_wrong_frame', 'plain', 'focal_gather', 'focal_gather_impl.h',
   'chain_apply_vec<T, V>(p.chain, src, plane, e, v);', 'chain_apply_vec<T, V>(p.chain, s.self, plane, e, v);',
   'FAIL cuda focal_gather',
   'a lazy chain: the shifted-in neighbour channels get the selected frame\'s pending blocks instead of their own'],
  ['chain_block_past_upto', 'asan', 'ample_fuse_pool', 'chain.h',
   'for (; i < c.upto; ++i) {', 'for (; i <= c.upto; ++i) {',
   'ERROR: AddressSanitizer: heap-buffer-overflow',
   'a lazy chain applies block upto too (one block past the due ones: K_L lies past the constant maps at upto = L)'],
  ['tam_no_clip_padding', 'plain', 'temporal_aggregate', 'temporal_aggregate_impl.h',
   'const int64_t t = n % p.T, r = p.K / 2;', 'const int64_t t = n, r = p.K / 2;',
   'FAIL cuda temporal_aggregate',
   'the TAM pads in time at the ends of the whole batch instead of each clip (a clip\'s first frames read the previous '
   . 'clip\'s last ones; later clips lose their taps)'],
  ['merge_wrong_axis', 'plain', 'bl_merge', 'bl_merge_impl.h',
   'nearest_src(i, p.h, p.H) * p.w;', 'nearest_src(i, p.w, p.W) * p.w;',
   'FAIL cuda bl_merge',
   'the big-little merge maps output rows with the column ratio (right only for square maps)'],
  ['crop_far_edge_unguarded', 'asan', 'focus_crop', 'focus_crop_impl.h',
   'const bool row1 = y + 1 < p.H;', 'const bool row1 = true;',
   'ERROR: AddressSanitizer: heap-buffer-overflow',
   'the bilinear crop reads its bottom taps without the far-edge guard (at a_y = 1 they lie in row H, past the '
   . 'frame: weight 0, but the read itself leaves the buffer for the last frame)'],
  ['segment_mean_backward_no_padding', 'plain', 'fullvideo_cluster', 'fullvideo_cluster_impl.h',
   'const int64_t j_end = s == m - 1 ? p.K : s + 1;', 'const int64_t j_end = s + 1;',
   'FAIL cuda segment_mean_backward',
   'the segment-mean backward ignores the padded output rows j >= M (their gradient never reaches the frames of the '
   . 'last emitted segment, which the forward repeated there)'],
);
my %by_name = map { $_->[0] => $_ } @controls;

my $cmd = shift @ARGV // '';
if ($cmd eq 'list') {
  print join("\t", $_->[0], $_->[1], $_->[2], $_->[3], $_->[6], $_->[7]), "\n" for @controls;
  exit 0;
}
die "usage: negative_controls.pl list | make NAME KERNELS_DIR OUT_DIR\n" unless $cmd eq 'make' && @ARGV == 3;
my ($name, $kdir, $out) = @ARGV;
my $c = $by_name{$name} or die "negative_controls.pl: no control named '$name'\n";
my (undef, undef, $op, $file, $old, $new) = @$c;

mkdir $out unless -d $out;
-d $out or die "negative_controls.pl: cannot create $out\n";

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }
sub put {  # write only when the text changed, so the check script's object reuse sees unchanged files as unchanged
  my ($f, $text) = @_;
  my $cur = slurp($f);
  return if defined $cur && $cur eq $text;
  open(my $fh, '>', $f) or die "negative_controls.pl: cannot write $f: $!\n";
  print $fh $text;
  close $fh;
}

my %text;
for my $h (glob("$kdir/*.h"), glob("$kdir/*.cuh"), "$kdir/$op.cu") {
  my $t = slurp($h) // die "negative_controls.pl: cannot read $h: $!\n";
  $text{basename($h)} = $t;
}
my $t = $text{$file} // die "negative_controls.pl: $name: $file is not among the copied sources\n";
my $count = () = $t =~ /\Q$old\E/g;
die "negative_controls.pl: $name: the text to mutate occurs $count times in $kdir/$file (expected exactly once); "
  . "the source changed - update the control in tests/cuda_emu/negative_controls.pl:\n$old\n" if $count != 1;
$t =~ s/\Q$old\E/$new/;
$text{$file} = $t;
put("$out/$_", $text{$_}) for sort keys %text;
print "$out/$op.cu\n";
