#!/bin/sh
# Runs a refresh-only plan and records whether live infrastructure drifted
# from the Terraform state. Exit code 2 from -detailed-exitcode means drift.
set -eu

ni git clone -d /workspace
cd /workspace/infrastructure/"$TF_DIRECTORY"
terraform init -input=false -backend-config="bucket=$STATE_BUCKET" >/dev/null
terraform workspace select "$TF_WORKSPACE"

set +e
terraform plan -refresh-only -detailed-exitcode -no-color -input=false > /tmp/plan.txt
rc=$?
set -e

case "$rc" in
  0) ni output set --key drifted --value false --json ;;
  2) ni output set --key drifted --value true --json ;;
  *) cat /tmp/plan.txt; ni log fatal "terraform plan failed with exit code $rc" ;;
esac

ni output set --key plan --value "$(tail -n 40 /tmp/plan.txt)"
