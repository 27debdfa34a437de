# The scale plot of bench/run.sh: gnuplot -e "tenants='T'; memory='M'; out='O.svg'" scale.gp
# tenants: "K candidate B1 native5" (full handshakes per server CPU-second, K CA lists)
# memory:  "N candidate L" (KiB per idle keep-alive connection at N open connections)
set terminal svg size 960,420 dynamic font "sans,11"
set output out
set multiplot layout 1,2
set grid
set key bottom left
set title "Full mTLS handshakes with K rotating CA lists (1 worker)"
set xlabel "distinct CA lists (K)"
set ylabel "handshakes per server CPU-second"
set logscale x 2
set yrange [0:*]
plot tenants using 1:2 with linespoints lw 2 title "resty-client-tls", \
     tenants using 1:3 with linespoints lw 2 title "B1: nginx-style C (store built per handshake)", \
     tenants using 1:4 with lines dt 2 lw 2 title "native nginx, one static 5-CA list"
unset logscale x
set title "Memory per idle keep-alive mTLS connection"
set xlabel "open connections"
set ylabel "KiB per connection (worker RssAnon growth / N)"
set key bottom right
plot memory using 1:2 with linespoints lw 2 title "resty-client-tls (chain + verify read)", \
     memory using 1:3 with linespoints lw 2 title "native nginx (return 200)"
unset multiplot
