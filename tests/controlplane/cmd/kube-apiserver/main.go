// Command kube-apiserver is Kubernetes' own apiserver entry point (k8s.io/kubernetes/cmd/kube-apiserver),
// built at the version pinned in ../../go.mod.
package main

import (
	"os"

	_ "k8s.io/component-base/logs/json/register" // JSON logging format, as upstream's main registers it
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
