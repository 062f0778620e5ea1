module lockprof.dev/godemo

go 1.18
