#!/usr/bin/env perl
# coverage.pl KERNELS_DIR < gcov JSON (one `gcov --json-format --branch-probabilities --stdout` document per line)
# Line, branch and function coverage of the files under KERNELS_DIR, merged over every translation unit and every template
# instantiation given: a line is executed when any instantiation executed it; branch i of a line is taken when it was
# taken in any instantiation. Prints a per-file table, a "coverage total" line and every executable line that never
# ran, with its text (so a reader sees at once why: an error path no test provokes, a loop back edge no size reaches),
# and every function / template instantiation (dtype × vector width × lane count) that never ran.
# Exit code 1 when a line or an instantiation never ran (the self-test must reach every kernel path), else 0.
use strict;
use warnings;
use JSON::PP;

my $kdir = shift @ARGV or die "usage: coverage.pl KERNELS_DIR < gcov.json\n";
$kdir =~ s{/+$}{};
my (%count, %br);  # {file}{line} = count; {file}{line} = [taken flags by branch index]
my %fn;            # {file}{demangled function} = executions (each template instantiation is its own function; an
                   # inline function has a copy per translation unit, of which the linker keeps one: summed by name)
while (my $doc = <STDIN>) {
  next unless $doc =~ /\S/;
  my $j = decode_json($doc);
  for my $f (@{ $j->{files} }) {
    my $file = $f->{file};
    next unless index($file, "$kdir/") == 0;
    $fn{$file}{ $_->{demangled_name} } += $_->{execution_count} for @{ $f->{functions} || [] };
    for my $l (@{ $f->{lines} }) {
      my $n = $l->{line_number};
      $count{$file}{$n} += $l->{count};
      my @b = grep { !$_->{throw} } @{ $l->{branches} || [] };
      my $acc = $br{$file}{$n} //= [];
      for my $i (0 .. $#b) { $acc->[$i] ||= ($b[$i]{count} > 0 ? 1 : 0); }
    }
  }
}
die "coverage.pl: no coverage data for files under $kdir\n" unless %count;

my ($tl, $te, $tb, $tt) = (0, 0, 0, 0);
my (@missed, @partial);
printf "coverage of %s by the emulated CUDA run (device translation units, all instantiations merged):\n", $kdir;
printf "  %-26s %6s %6s %7s %9s %6s %7s\n", 'file', 'lines', 'run', 'lines%', 'branches', 'taken', 'branch%';
for my $file (sort keys %count) {
  my @lines = sort { $a <=> $b } keys %{ $count{$file} };
  my $exec = grep { $count{$file}{$_} > 0 } @lines;
  my ($nb, $nt) = (0, 0);
  for my $n (@lines) { my $b = $br{$file}{$n}; $nb += @$b; $nt += grep { $_ } @$b; }
  (my $short = $file) =~ s{^\Q$kdir\E/}{};
  printf "  %-26s %6d %6d %6.1f%% %9d %6d %6.1f%%\n", $short, scalar(@lines), $exec, 100 * $exec / @lines, $nb, $nt,
    $nb ? 100 * $nt / $nb : 100;
  ($tl, $te, $tb, $tt) = ($tl + @lines, $te + $exec, $tb + $nb, $tt + $nt);
  my @src;
  if (open(my $fh, '<', $file)) { @src = <$fh>; close $fh; }
  for my $n (@lines) {
    my $b = $br{$file}{$n};
    my $untaken = grep { !$_ } @$b;
    if ($count{$file}{$n} > 0 && $untaken) {
      my $text = $src[$n - 1] // '';
      $text =~ s/^\s+|\s+$//g;
      push @partial, sprintf("    %s:%d: %d of %d branches never taken: %s", $short, $n, $untaken, scalar(@$b),
                             substr($text, 0, 90));
    }
    next if $count{$file}{$n} > 0;
    my $text = $src[$n - 1] // '';
    $text =~ s/^\s+|\s+$//g;
    push @missed, sprintf("    %s:%d: %s", $short, $n, substr($text, 0, 100));
  }
}
printf "coverage total: %d/%d lines (%.1f%%), %d/%d branches taken (%.1f%%)\n", $te, $tl, 100 * $te / $tl, $tt, $tb,
  $tb ? 100 * $tt / $tb : 100;
print @missed ? "  lines never executed:\n" . join("\n", @missed) . "\n" : "  every executable line ran\n";
my @never_fn;
for my $file (sort keys %fn) {
  (my $short = $file) =~ s{^\Q$kdir\E/}{};
  push @never_fn, "    $short: $_" for grep { $fn{$file}{$_} == 0 } sort keys %{ $fn{$file} };
}
my $nfn = 0;
$nfn += keys %{ $fn{$_} } for keys %fn;
printf "coverage functions: %d/%d functions and template instantiations executed\n", $nfn - @never_fn, $nfn;
print "  instantiations never executed:\n" . join("\n", @never_fn) . "\n" if @never_fn;
print "  lines with a branch never taken (gcov -b; merged by branch index over instantiations):\n" . join("\n", @partial) . "\n"
  if @partial;
exit((@missed || @never_fn) ? 1 : 0);
