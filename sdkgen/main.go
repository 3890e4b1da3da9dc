// Command sdkgen generates the run402 package's SDKs from its schema with Pulumi's own code
// generators (github.com/pulumi/pulumi/pkg/v3/codegen), the ones `pulumi package gen-sdk` reaches
// through each language's plugin; those plugins are not all obtainable here, the generators are.
//
// Usage: sdkgen <schema.json> <out-dir> [nodejs|python|go ...]
// Writes <out-dir>/<language>/… for each language (all three when none is named).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blang/semver"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

// noReferences is the loader for a schema that references no other package: run402's types are all
// its own, so any lookup is a mistake in the schema, reported as such.
type noReferences struct{}

func (noReferences) err(pkg string) error {
	return fmt.Errorf("the run402 schema references package %q; it must reference none", pkg)
}

func (l noReferences) LoadPackage(pkg string, _ *semver.Version) (*schema.Package, error) {
	return nil, l.err(pkg)
}

func (l noReferences) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, l.err(d.Name)
}

func (l noReferences) LoadPackageReference(pkg string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, l.err(pkg)
}

func (l noReferences) LoadPackageReferenceV2(
	_ context.Context, d *schema.PackageDescriptor,
) (schema.PackageReference, error) {
	return nil, l.err(d.Name)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sdkgen: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: sdkgen <schema.json> <out-dir> [nodejs|python|go ...]")
	}
	text, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(text, &spec); err != nil {
		return fmt.Errorf("%s is not a package schema: %w", args[0], err)
	}
	loader := noReferences{}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{})
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", args[0], diags.Error())
	}
	languages := args[2:]
	if len(languages) == 0 {
		languages = []string{"nodejs", "python", "go"}
	}
	for _, language := range languages {
		var files map[string][]byte
		switch language {
		case "nodejs":
			files, err = nodejs.GeneratePackage("sdkgen", pkg, nil, nil, false, loader)
		case "python":
			files, err = python.GeneratePackage("sdkgen", pkg, nil, loader)
		case "go":
			files, err = gogen.GeneratePackage("sdkgen", pkg, nil)
		default:
			return fmt.Errorf("unknown language %q (nodejs, python or go)", language)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", language, err)
		}
		root := filepath.Join(args[1], language)
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		for name, data := range files {
			path := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("%s: %d files in %s\n", language, len(files), root)
	}
	return nil
}
