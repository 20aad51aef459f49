// Package infra holds the Terraform modules that deploy the dispatcher
// (aws/, gcp/, azure/) and the local development stack (local/). It has no Go
// code of its own: its test checks the modules offline, where no provider can
// be downloaded and so `terraform validate` cannot run.
package infra
