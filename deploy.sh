#!/usr/bin/env bash
# Build the octoqueue server image and deploy it.
#
#   ./deploy.sh [--dry-run] [--no-build] [--no-push] [--target TARGET]
#
# --dry-run prints every command it would run (secrets are never printed: they travel in files) and runs none.
#
# Configuration (environment variables; a .env file is NOT read here, it is shipped to the service):
#   DEPLOY_TARGET    none | ssh | cloudrun | fly                  (default: none = build and push only)
#   DEPLOY_REGISTRY  registry to push to, e.g. ghcr.io/acme    (default: none; then nothing is pushed)
#   DEPLOY_TAG       image tag                                 (default: the git commit, else a timestamp)
#   DEPLOY_IMAGE     the whole image reference (default: $DEPLOY_REGISTRY/octoqueue:$DEPLOY_TAG or octoqueue:$DEPLOY_TAG)
#   DEPLOY_ENV_FILE  the service's settings, see .env.example  (default: .env)
#   DEPLOY_DOCKER    container CLI                             (default: docker)
#   ssh:      DEPLOY_HOST (required), DEPLOY_USER, DEPLOY_SSH_PORT (22), DEPLOY_CONTAINER (octoqueue),
#             DEPLOY_HOST_PORT (8080), DEPLOY_VOLUME (octoqueue-data). With no registry the image goes over ssh.
#   cloudrun: GCP_PROJECT (required), GCP_REGION (europe-west6), DEPLOY_SERVICE (octoqueue)
#   fly:      FLY_APP (required)
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

DRY_RUN=0
BUILD=1
PUSH=1
TARGET="${DEPLOY_TARGET:-none}"

while (($# > 0)); do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --no-build) BUILD=0 ;;
        --no-push) PUSH=0 ;;
        --target)
            [[ $# -ge 2 ]] || { echo "deploy.sh: --target needs a value" >&2; exit 2; }
            TARGET="$2"
            shift
            ;;
        --target=*) TARGET="${1#--target=}" ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "deploy.sh: unknown option $1 (see --help)" >&2
            exit 2
            ;;
    esac
    shift
done

die() {
    echo "deploy.sh: $*" >&2
    exit 1
}

# Print a command, then run it unless this is a dry run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if ((DRY_RUN == 0)); then
        "$@"
    fi
}

# The same for a shell pipeline, given as one string.
run_pipeline() {
    printf '+ %s\n' "$1"
    if ((DRY_RUN == 0)); then
        bash -o pipefail -c "$1"
    fi
}

cd "$(dirname "$0")"

DOCKER="${DEPLOY_DOCKER:-docker}"
ENV_FILE="${DEPLOY_ENV_FILE:-.env}"
REGISTRY="${DEPLOY_REGISTRY:-}"
TAG="${DEPLOY_TAG:-}"
if [[ -z "$TAG" ]]; then
    TAG="$(git rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)"
fi
if [[ -n "$REGISTRY" ]]; then
    IMAGE="${DEPLOY_IMAGE:-${REGISTRY%/}/octoqueue:${TAG}}"
else
    IMAGE="${DEPLOY_IMAGE:-octoqueue:${TAG}}"
fi

case "$TARGET" in
    none | ssh | cloudrun | fly) ;;
    *) die "unknown DEPLOY_TARGET '$TARGET' (none, ssh, cloudrun or fly)" ;;
esac
if [[ "$TARGET" != none && ! -f "$ENV_FILE" ]]; then
    ((DRY_RUN == 1)) || die "$ENV_FILE not found: copy .env.example to $ENV_FILE and fill it in"
    echo "deploy.sh: (dry run) $ENV_FILE not found; continuing" >&2
fi
case "$TARGET" in
    ssh) [[ -n "${DEPLOY_HOST:-}" ]] || die "set DEPLOY_HOST for the ssh target" ;;
    cloudrun)
        [[ -n "${GCP_PROJECT:-}" ]] || die "set GCP_PROJECT for the cloudrun target"
        [[ "$IMAGE" == */* ]] || die "Cloud Run pulls from a registry: set DEPLOY_REGISTRY"
        ;;
    fly)
        [[ -n "${FLY_APP:-}" ]] || die "set FLY_APP for the fly target"
        [[ "$IMAGE" == */* ]] || die "fly deploys from a registry: set DEPLOY_REGISTRY (e.g. registry.fly.io/APP)"
        ;;
esac

echo "deploy.sh: image $IMAGE, target $TARGET$( ((DRY_RUN == 1)) && echo ' (dry run)')" >&2

# -- build and push ---------------------------------------------------------------------------------------------
if ((BUILD == 1)); then
    run "$DOCKER" build --pull --tag "$IMAGE" .
fi
PUSHED=0
if ((PUSH == 1)) && [[ "$IMAGE" == */* ]]; then
    run "$DOCKER" push "$IMAGE"
    PUSHED=1
fi

# -- deploy -----------------------------------------------------------------------------------------------------
deploy_ssh() {
    local remote="${DEPLOY_USER:+${DEPLOY_USER}@}${DEPLOY_HOST}"
    local port="${DEPLOY_SSH_PORT:-22}"
    local name="${DEPLOY_CONTAINER:-octoqueue}"
    local host_port="${DEPLOY_HOST_PORT:-8080}"
    local volume="${DEPLOY_VOLUME:-octoqueue-data}"
    local remote_env="/tmp/${name}.env"
    local ssh=(ssh -p "$port" "$remote")

    if ((PUSHED == 1)); then
        run "${ssh[@]}" "$DOCKER" pull "$IMAGE"
    else
        run_pipeline "$(printf '%q ' "$DOCKER" save "$IMAGE")| $(printf '%q ' "${ssh[@]}" "$DOCKER")load"
    fi
    run scp -q -P "$port" "$ENV_FILE" "${remote}:${remote_env}"
    # The first deployment has no container to replace.
    run "${ssh[@]}" "$(printf '%q ' "$DOCKER" rm --force "$name")>/dev/null 2>&1 || true"
    run "${ssh[@]}" "$DOCKER" run --detach --name "$name" --restart unless-stopped \
        --env-file "$remote_env" --publish "${host_port}:8080" --volume "${volume}:/data" "$IMAGE"
    run "${ssh[@]}" rm -f "$remote_env"
}

deploy_cloudrun() {
    local project="$GCP_PROJECT"
    local region="${GCP_REGION:-europe-west6}"
    local service="${DEPLOY_SERVICE:-octoqueue}"
    local vars
    vars="$(mktemp)"
    trap 'rm -f "$vars"' RETURN
    # Cloud Run takes variables as a YAML file, so that values never appear on a command line.
    if [[ -f "$ENV_FILE" ]]; then
        grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$ENV_FILE" | grep -v -E '^PORT=' | while IFS='=' read -r key value; do
            value="${value%\"}"
            value="${value#\"}"
            printf '%s: "%s"\n' "$key" "$(printf '%s' "$value" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
        done >"$vars"
    fi
    run gcloud run deploy "$service" --project "$project" --region "$region" --image "$IMAGE" \
        --platform managed --allow-unauthenticated --env-vars-file "$vars"
    run gcloud run services describe "$service" --project "$project" --region "$region" \
        --format 'value(status.url)'
}

deploy_fly() {
    local app="$FLY_APP"
    run_pipeline "fly secrets import --stage --app $(printf '%q' "$app") < $(printf '%q' "$ENV_FILE")"
    run fly deploy --app "$app" --image "$IMAGE"
}

case "$TARGET" in
    ssh) deploy_ssh ;;
    cloudrun) deploy_cloudrun ;;
    fly) deploy_fly ;;
    none) echo "deploy.sh: built $IMAGE; set DEPLOY_TARGET to deploy it" >&2 ;;
esac
