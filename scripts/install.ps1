<#
Installs a released imgsync binary on Windows, verified against a pinned
SHA-256 (the PowerShell counterpart of install.sh). Take it from a release's
assets: the release stamps its repository, version and archive checksums into
the block below; the release notes give the exact lines:

  powershell -ExecutionPolicy Bypass -File install.ps1 [-To DIR] [-NoModifyPath]

-To DIR        install imgsync.exe into DIR (default: $env:IMGSYNC_INSTALL_DIR, else
               %LOCALAPPDATA%\Programs\imgsync\bin)
-NoModifyPath  leave the user's PATH alone (it is extended otherwise, except
               under GitHub Actions)

Environment, as for install.sh:
  IMGSYNC_VERSION        version to install (default: the stamped one; else the
                         base's `latest` file)
  IMGSYNC_DOWNLOAD_BASE  <base>/v<version>/<archive> (+ .sha256, SHA256SUMS) and
                         <base>/latest (default:
                         https://github.com/$IMGSYNC_REPO/releases/download);
                         https only, plain http only to a loopback host
  IMGSYNC_TARGET         Rust target (default: x86_64-pc-windows-msvc)
  IMGSYNC_REPO           GitHub repository of the releases (default: the stamped one)
  IMGSYNC_SHA256         the archive's SHA-256, for a version this script does not pin

The checksum trusted is the one pinned here for the stamped version, else
IMGSYNC_SHA256, else (said so) the .sha256 file beside the archive.

Nothing is written to DIR before the checksum matched and the binary ran.
Exit status (when run as a file): 0 installed, 1 other error, 3 download
failed, 4 checksum mismatch.
#>
param(
    [string]$To = "",
    [switch]$NoModifyPath
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue' # Invoke-WebRequest crawls with a progress bar on PowerShell 5

# --- stamp: begin (scripts/stamp.sh fills this in for a release; empty on main)
$StampRepo = ''
$StampVersion = ''
$StampSums = ''
# --- stamp: end

function Say([string]$msg) { [Console]::Error.WriteLine("imgsync-install: $msg") }

function Fail([int]$code, [string]$msg) {
    Say $msg
    Say 'nothing was installed'
    # Run as a file: an exit status. Piped into iex: exit would close the user's shell.
    if ($PSCommandPath) { exit $code }
    throw "imgsync-install: $msg"
}

function Fetch([string]$url, [string]$file) {
    for ($attempt = 1; ; $attempt++) {
        try {
            Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $file -TimeoutSec 600
            return $true
        } catch {
            $status = $null
            if ($_.Exception.Response) { $status = [int]$_.Exception.Response.StatusCode }
            if ($attempt -ge 3 -or ($status -ge 400 -and $status -lt 500)) {
                Say "$url : $($_.Exception.Message)"
                return $false
            }
            Start-Sleep -Seconds (2 * $attempt)
        }
    }
}

if ($PSVersionTable.PSVersion.Major -lt 6) {
    # Windows PowerShell 5 may default to TLS 1.0.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
}

if (-not $To) { $To = $env:IMGSYNC_INSTALL_DIR }
if (-not $To) { $To = Join-Path $env:LOCALAPPDATA 'Programs\imgsync\bin' }

$repo = if ($env:IMGSYNC_REPO) { $env:IMGSYNC_REPO } else { $StampRepo }
if ($repo -and $repo -notmatch '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$') { Fail 1 "invalid IMGSYNC_REPO: $repo (expected owner/name)" }
$base = $env:IMGSYNC_DOWNLOAD_BASE
$customBase = [bool]$base
if (-not $customBase) {
    if (-not $repo) {
        Fail 1 "this install.ps1 is not from a release, so it knows no repository: take install.ps1 from a release's assets, or set IMGSYNC_REPO=owner/name or IMGSYNC_DOWNLOAD_BASE"
    }
    $base = "https://github.com/$repo/releases/download"
}
$base = $base.TrimEnd('/')
# https only: a plain-http answer could be anything. Loopback is for tests.
if ($base -notmatch '^https://' -and $base -notmatch '^http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$)') {
    Fail 1 "IMGSYNC_DOWNLOAD_BASE must be https:// (plain http only to localhost, 127.0.0.1 or [::1]): $base"
}

$target = $env:IMGSYNC_TARGET
if (-not $target) {
    # Windows on Arm runs the x86_64 build under emulation.
    $target = 'x86_64-pc-windows-msvc'
}
if ($target -notmatch '^[A-Za-z0-9_.-]+$') { Fail 1 "invalid IMGSYNC_TARGET: $target" }
if ($target -notmatch 'windows') { Fail 1 "$target is not a Windows target: use install.sh" }

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("imgsync-install-" + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
    $version = if ($env:IMGSYNC_VERSION) { $env:IMGSYNC_VERSION } else { $StampVersion }
    if (-not $version) {
        $latestUrl = if ($customBase) { "$base/latest" } else { "https://github.com/$repo/releases/latest/download/latest" }
        $latest = Join-Path $tmp 'latest'
        if (-not (Fetch $latestUrl $latest)) {
            Fail 3 "$latestUrl could not be read: set IMGSYNC_VERSION (e.g. `$env:IMGSYNC_VERSION = '0.1.0')"
        }
        $version = (Get-Content -Raw $latest).Trim()
    }
    $version = "$version".TrimStart('v')
    if ($version -notmatch '^[A-Za-z0-9.+-]+$') { Fail 1 "invalid version: '$version'" }

    $name = "imgsync-$version-$target"
    $archive = "$name.zip"
    $url = "$base/v$version/$archive"
    $zip = Join-Path $tmp $archive

    # Which checksum to trust, decided before anything is downloaded.
    $expected = ''
    $sumFrom = ''
    if ($StampVersion -and $version -eq $StampVersion) {
        $stamped = @($StampSums -split "`n" | ForEach-Object { $f = $_.Trim() -split '\s+'; if ($f.Count -eq 2) { [pscustomobject]@{ Sum = $f[0]; Name = $f[1] } } })
        $hit = $stamped | Where-Object { $_.Name -eq $archive } | Select-Object -First 1
        if (-not $hit) {
            Fail 3 "release $version has no $archive; it has: $(($stamped | ForEach-Object { $_.Name }) -join ', '). Set IMGSYNC_TARGET to the target of one of them"
        }
        $expected = $hit.Sum.ToLowerInvariant()
        $sumFrom = 'pinned in this install.ps1'
    } elseif ($env:IMGSYNC_SHA256) {
        $expected = $env:IMGSYNC_SHA256.ToLowerInvariant()
        $sumFrom = 'IMGSYNC_SHA256'
    }

    Say "downloading $url"
    if (-not (Fetch $url $zip)) {
        $sums = Join-Path $tmp 'SHA256SUMS'
        if (Fetch "$base/v$version/SHA256SUMS" $sums) {
            $offered = @(Get-Content $sums | ForEach-Object { (($_.Trim() -split '\s+')[1]).TrimStart('*') }) -join ', '
            Fail 3 "$base/v$version has no $archive; it has: $offered. Set IMGSYNC_TARGET to the target of one of them"
        }
        Fail 3 "download failed: $url (no such release or archive? IMGSYNC_VERSION and IMGSYNC_TARGET choose another)"
    }
    if (-not $expected) {
        if (-not (Fetch "$url.sha256" "$zip.sha256")) { Fail 3 "download failed: $url.sha256" }
        $expected = ((Get-Content -Raw "$zip.sha256").Trim() -split '\s+')[0].ToLowerInvariant()
        $sumFrom = "$url.sha256, from the same place as the archive: it proves an intact download, not its origin (take install.ps1 from the release, or set IMGSYNC_SHA256)"
    }
    if ($expected -notmatch '^[0-9a-f]{64}$') { Fail 4 "no SHA-256 to check against ($sumFrom)" }
    Say "checksum from $sumFrom"
    $actual = (Get-FileHash -Algorithm SHA256 -Path $zip).Hash.ToLowerInvariant()
    if ($actual -ne $expected) {
        Fail 4 "checksum mismatch for ${archive}: expected $expected, got $actual (a corrupted or tampered download)"
    }
    Say "checksum ok ($actual)"

    $unpacked = Join-Path $tmp 'x'
    try {
        Expand-Archive -Path $zip -DestinationPath $unpacked
    } catch {
        Fail 1 "could not unpack ${archive}: $($_.Exception.Message)"
    }
    $bin = Join-Path $unpacked "$name\imgsync.exe"
    if (-not (Test-Path -PathType Leaf $bin)) { Fail 1 "$archive holds no $name\imgsync.exe" }
    & $bin --version *> $null
    if ($LASTEXITCODE -ne 0) { Fail 1 "the downloaded imgsync does not run here (target $target)" }

    # A temp file in DIR, then one rename.
    try {
        New-Item -ItemType Directory -Force -Path $To | Out-Null
        $partial = Join-Path $To ".imgsync.partial.$PID.exe"
        Copy-Item -Path $bin -Destination $partial -Force
        Move-Item -Path $partial -Destination (Join-Path $To 'imgsync.exe') -Force
    } catch {
        if ($partial) { Remove-Item -Force -ErrorAction SilentlyContinue $partial }
        Fail 1 "could not write to ${To}: $($_.Exception.Message)"
    }
} finally {
    Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $tmp
}

$installed = Join-Path $To 'imgsync.exe'
Say "installed $installed"
& $installed --version

$onPath = ($env:Path -split ';') -contains $To
if (-not $onPath -and -not $NoModifyPath -and $env:GITHUB_ACTIONS -ne 'true') {
    $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    if (-not (($userPath -split ';') -contains $To)) {
        [Environment]::SetEnvironmentVariable('Path', (@($userPath, $To) | Where-Object { $_ }) -join ';', 'User')
        Say "added $To to your PATH (new terminals see it)"
    }
    $env:Path = "$env:Path;$To"
} elseif (-not $onPath) {
    Say "$To is not on PATH"
}
