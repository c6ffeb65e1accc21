# syntax=docker/dockerfile:1
# The inference service on CPU hosts. Build from the repository root:
#   docker build -f docker/api.Dockerfile -t alexnet-api .
# The runtime stage is the ASP.NET runtime only: no SDK, no TorchSharp (the API never references it).

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files alone, so the layer is cached until a package changes.
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Model/AlexNet.Model.csproj src/Model/
COPY src/Search/AlexNet.Search.csproj src/Search/
COPY src/Api/AlexNet.Api.csproj src/Api/
RUN dotnet restore src/Api/AlexNet.Api.csproj
COPY src/Model/ src/Model/
COPY src/Search/ src/Search/
COPY src/Api/ src/Api/
RUN dotnet publish src/Api/AlexNet.Api.csproj -c Release --no-restore -o /app \
    && rm -f /app/*.dll.config /app/onnxruntime*.dll

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# curl only for the container health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
COPY models/ /models/
RUN mkdir -p /data && chown "$APP_UID" /data
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Inference__ModelPath=/models/fashion-mnist-compact.onnx \
    Gallery__DatabasePath=/data/gallery.db
VOLUME ["/data"]
EXPOSE 8080
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "http://localhost:8080/health/ready"]
ENTRYPOINT ["dotnet", "AlexNet.Api.dll"]
