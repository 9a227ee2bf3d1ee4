<#
Installs a released imgsync binary on Windows, verified against its published
SHA-256 (the PowerShell counterpart of install.sh):

  irm https://raw.githubusercontent.com/OWNER/imgsync/main/scripts/install.ps1 | iex
  powershell -ExecutionPolicy Bypass -File install.ps1 [-To DIR] [-NoModifyPath]

-To DIR        install imgsync.exe into DIR (default: $env:IMGSYNC_INSTALL_DIR, else
               %LOCALAPPDATA%\Programs\imgsync\bin)
-NoModifyPath  leave the user's PATH alone (it is extended otherwise, except
               under GitHub Actions)

Environment, as for install.sh:
  IMGSYNC_VERSION        version to install (default: the latest release; with
                         IMGSYNC_DOWNLOAD_BASE the base's `latest` file, required
                         when the base has none)
  IMGSYNC_DOWNLOAD_BASE  <base>/v<version>/<archive> and <archive>.sha256
                         (default: https://github.com/$IMGSYNC_REPO/releases/download)
  IMGSYNC_TARGET         Rust target (default: x86_64-pc-windows-msvc)
  IMGSYNC_REPO           GitHub repository of the releases

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

$DefaultRepo = 'OWNER/imgsync'

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

$repo = if ($env:IMGSYNC_REPO) { $env:IMGSYNC_REPO } else { $DefaultRepo }
$base = $env:IMGSYNC_DOWNLOAD_BASE
$customBase = [bool]$base
if (-not $customBase) { $base = "https://github.com/$repo/releases/download" }
$base = $base.TrimEnd('/')

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
    $version = $env:IMGSYNC_VERSION
    if (-not $version) {
        if ($customBase) {
            $latest = Join-Path $tmp 'latest'
            if (-not (Fetch "$base/latest" $latest)) {
                Fail 1 "$base/latest could not be read: set IMGSYNC_VERSION (e.g. `$env:IMGSYNC_VERSION = '0.1.0')"
            }
            $version = (Get-Content -Raw $latest).Trim()
        } else {
            try {
                $version = (Invoke-RestMethod -UseBasicParsing -Uri "https://api.github.com/repos/$repo/releases/latest").tag_name
            } catch {
                Fail 3 "could not ask GitHub for the latest release of ${repo}: set IMGSYNC_VERSION"
            }
        }
    }
    $version = "$version".TrimStart('v')
    if ($version -notmatch '^[A-Za-z0-9.+-]+$') { Fail 1 "invalid version: '$version'" }

    $name = "imgsync-$version-$target"
    $archive = "$name.zip"
    $url = "$base/v$version/$archive"
    $zip = Join-Path $tmp $archive

    Say "downloading $url"
    if (-not (Fetch $url $zip)) { Fail 3 "download failed: $url" }
    if (-not (Fetch "$url.sha256" "$zip.sha256")) { Fail 3 "download failed: $url.sha256" }

    $expected = ((Get-Content -Raw "$zip.sha256").Trim() -split '\s+')[0].ToLowerInvariant()
    if ($expected -notmatch '^[0-9a-f]{64}$') { Fail 4 "$url.sha256 holds no SHA-256" }
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
