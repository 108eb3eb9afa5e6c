# The soak run (benches/soak.sh): p50/p99 latency per minute of the fixed-rate load, and legate's
# RSS and open descriptors every 5 s. Data: benches/plots/soak.csv, benches/plots/soak-samples.csv.
set terminal pngcairo size 900,800 font ",10"
set output "benches/plots/soak.png"
set multiplot layout 3,1 title "legate soak run: fixed-rate /v1/authorize while policies reload, keys rotate, the entity source flaps, refreshes race"
set grid
set key top left
set xlabel "minute of the run"
set ylabel "latency (ms, log scale)"
set logscale y
plot "benches/plots/soak.csv" using ($1+0.5):5 with linespoints lw 2 title "p99", \
     "" using ($1+0.5):4 with linespoints lw 2 title "p50"
unset logscale y
set yrange [0:*]
set xlabel "seconds since start"
set ylabel "RSS (MiB)"
plot "benches/plots/soak-samples.csv" using 1:2 with lines lw 2 title "VmRSS"
set ylabel "open descriptors"
plot "benches/plots/soak-samples.csv" using 1:3 with lines lw 2 title "fds"
unset multiplot
