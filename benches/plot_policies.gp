# p50 latency of POST /v1/authorize (one connection) against the number of generated per-customer
# policies in one file; data from `BEFORE_BIN=<old legate> bash benches/fast_path.sh` (section
# "policies"); policies-before-issue.dat is the one figure from issue 15 itself.
set terminal pngcairo size 900,520 font ",11"
set output "benches/plots/policies.png"
set title "legate POST /v1/authorize p50 vs policies in one file (1 connection, release)"
set xlabel "generated policies (+ the 5 shipped)"
set ylabel "p50 latency (ms)"
set logscale x
set logscale y
set xrange [50:200000]
set grid
set key top left
# 0 policies is drawn at 100 on the log axis.
f(x) = x > 0 ? x : 100
plot "benches/plots/policies-before.dat" using (f($1)):2 with linespoints lw 2 title "before (main at 4fedfdd, before issue 15; re-run up to +2,000)", \
     "benches/plots/policies-before-issue.dat" using (f($1)):2 with points pt 7 ps 1.5 title "before, +10,000 (issue 15 figure, not re-run: 51 s start-up, 16.9 GB)", \
     "benches/plots/policies-after.dat" using (f($1)):2 with linespoints lw 2 title "after (policy index, this pass)"
