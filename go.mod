module github.com/pushpool/pushpool

go 1.26
