module github.com/switchyard-dev/switchyard

go 1.26
